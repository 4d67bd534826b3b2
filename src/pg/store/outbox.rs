//! PostgreSQL backend of the port's outbox ([`Outbox`]): broadcasts, their expansion into
//! deliveries, claims with leases, outcomes.
//!
//! Why it looks as it does:
//! - **Several nodes claim from one outbox.** A claim is one statement: `SELECT … FOR UPDATE
//!   SKIP LOCKED` of the channel's due pending rows that no live lease holds, then the lease
//!   (this process's node id, `now + CLAIM_LEASE`) and the attempt counted (as `pg::outbox`
//!   does). Two nodes claiming at once never wait for each other and never get the same row.
//! - **A lease is fenced, and extended by progress.** A report (`record`, `record_progress`)
//!   changes the row only where the attempt *and* the lease expiry are still the claim's: a
//!   node whose lease ran out and whose delivery another node took over (a later attempt, a
//!   later expiry), or whose outcome is recorded already (the lease is cleared), is refused
//!   with `StoreError::Conflict` and nothing is written. The expiry is part of the fence because `requeue_dead` starts the
//!   attempts over: an attempt number alone could come round again. A lease that ran out while
//!   nobody took the delivery over is still honoured (the send happened; refusing would only
//!   cause a duplicate). `record_progress` (a part of a threaded message accepted) extends the
//!   lease to `CLAIM_LEASE` from now and hands back the lease with its new expiry, so a long
//!   multi-part send keeps its claim; the dispatcher does not start a send on an expired lease.
//! - **A dead node's claims come back** when their leases run out: `claim_due` takes rows whose
//!   lease expired at `now`. So `recover_in_flight` has nothing to do here (a starting node
//!   cannot tell an earlier run's claims from a live node's; the leases can).
//! - **Expansion is idempotent.** A batch is one transaction under the broadcast's row lock:
//!   subscribers after the cursor, a page of `batch` in id order (the sled key order), the
//!   domain's `ExpandTarget::reaches`, the new deliveries inserted with `ON CONFLICT DO NOTHING`
//!   on the idempotency key, and the advanced cursor written before the commit. Re-running a
//!   batch after a crash adds nothing twice; two nodes expanding one broadcast take turns, the
//!   second from the first one's cursor; a broadcast one node finished is not reopened.
//! - **The same answers as sled**: orders bytewise (`COLLATE "C"`) as sled's keys; due times
//!   at the millisecond, as sled's due index keeps them; claimed deliveries shown in flight.
//!   `payload` is rewritten with every recorded outcome; between a claim and its outcome the
//!   claim columns (attempts, lease) are the truth.
//! - **The per-send statements are prepared once per connection** (`prepare_cached`: the
//!   claim, `record`, `record_progress`, and the subscriber read before a send): a statement
//!   given as text is parsed, planned and closed again on every call, two round trips where
//!   one does. The claim reads migration 8's index in its whole order, so it stops after its
//!   batch however many rows share one due time.

use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};
use tokio_postgres::Row;
use ulid::Ulid;

use super::{begin, corrupt, db, sql_limit, PgStore};
use crate::domain::{
    Broadcast, Claim, ComponentName, Delivery, DeliveryCursor, DeliveryState, ExpandTarget,
    Expanded, Lease, Subscriber, Target, Update,
};
use crate::pg::rows;
use crate::store::codec;
use crate::store::port::Outbox;
use crate::store::StoreError;

/// How long a claim holds its delivery: a few times the longest send (a threaded message of
/// several parts, each with its own send timeout). After it, another node may claim the delivery
/// again (at-least-once).
pub fn claim_lease() -> Duration {
    Duration::minutes(5)
}

/// This process's name in the lease columns (a ULID per process: who holds a claim, for an
/// operator reading the table; the fence is the attempt and the expiry).
pub fn node_id() -> &'static str {
    static NODE: OnceLock<String> = OnceLock::new();
    NODE.get_or_init(|| Ulid::new().to_string())
}

/// A time at the millisecond, as the sled store's due index keeps due times.
fn millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

fn lease_lost(d: &Delivery, lease: Lease) -> StoreError {
    StoreError::Conflict(format!(
        "delivery {}: this claim (attempt {}) no longer holds it: its lease ran out and another \
         claim took it over, or its outcome is recorded already",
        d.id, lease.attempt
    ))
}

fn broadcast_of(r: &Row) -> Result<Broadcast, StoreError> {
    let body: &str = r.try_get(0).map_err(db)?;
    Ok(rows::from_json::<Broadcast>("broadcast", body)?)
}

fn to_u32(what: &str, n: i32) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("{what} {n} is out of range")))
}

fn to_i32(what: &str, n: u32) -> Result<i32, StoreError> {
    i32::try_from(n).map_err(|_| StoreError::Corrupt(format!("{what} {n} is out of range")))
}

/// The subscriber a sled cursor (the last subscriber key expanded: its ULID's bytes) names.
fn cursor_id(c: &[u8]) -> Result<String, StoreError> {
    let bytes: [u8; 16] = c
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("broadcast cursor of {} bytes", c.len())))?;
    Ok(Ulid::from_bytes(bytes).to_string())
}

impl Outbox for PgStore {
    /// In sled's key order: incident, seq, channel (bytewise).
    async fn open_broadcasts(&self) -> Result<Vec<Broadcast>, StoreError> {
        let client = self.client().await?;
        let found = client
            .query(
                "SELECT body::text FROM crier_broadcasts WHERE NOT done
                 ORDER BY incident_id COLLATE \"C\", seq, channel COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(db)?;
        found.iter().map(broadcast_of).collect()
    }

    async fn published_update(
        &self,
        incident: Ulid,
        seq: u32,
    ) -> Result<Option<Update>, StoreError> {
        // A standalone message's seq (top bit set) is no update's.
        let Ok(seq) = i32::try_from(seq) else {
            return Ok(None);
        };
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT body::text FROM crier_updates WHERE incident_id = $1 AND seq = $2",
                &[&incident.to_string(), &seq],
            )
            .await
            .map_err(db)?;
        let Some(r) = row else { return Ok(None) };
        let body: &str = r.try_get(0).map_err(db)?;
        let u: Update = rows::from_json("update", body)?;
        Ok(u.published_at.is_some().then_some(u))
    }

    async fn expand(
        &self,
        b: &Broadcast,
        components: &[ComponentName],
        target: &ExpandTarget<'_>,
        batch: usize,
        now: DateTime<Utc>,
    ) -> Result<Expanded, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        // The broadcast's row, locked until the commit: two nodes expanding it take turns.
        let row = tx
            .query_opt(
                "SELECT body::text FROM crier_broadcasts
                 WHERE incident_id = $1 AND seq = $2 AND channel = $3 FOR UPDATE",
                &[&b.incident_id.to_string(), &i64::from(b.seq), &b.channel],
            )
            .await
            .map_err(db)?;
        let stored = row.as_ref().map(broadcast_of).transpose()?;
        let mut next = b.clone();
        if let Some(s) = &stored {
            if s.done {
                // Finished (by another node, or before a crash): not reopened.
                return Ok(Expanded {
                    created: 0,
                    done: true,
                });
            }
            // Resume from the further of the caller's and the stored cursor (None is first).
            if s.cursor > next.cursor {
                next.cursor = s.cursor.clone();
            }
        }
        let mut fresh = Vec::new();
        if !b.subscribers {
            fresh.push(Delivery::pending(b, Target::Endpoint, now));
            next.done = true;
        } else {
            let after = next.cursor.as_deref().map(cursor_id).transpose()?;
            let page = tx
                .query(
                    "SELECT id, body::text FROM crier_subscribers
                     WHERE $1::text IS NULL OR id COLLATE \"C\" > $1
                     ORDER BY id COLLATE \"C\"
                     LIMIT $2",
                    &[&after, &sql_limit(batch.max(1))],
                )
                .await
                .map_err(db)?;
            let mut seen = 0;
            for r in &page {
                let body: &str = r.try_get(1).map_err(db)?;
                let s: Subscriber = rows::from_json("subscriber", body)?;
                seen += 1;
                next.cursor = Some(s.id.to_bytes().to_vec());
                if target.reaches(&s, components) {
                    let to = Target::Subscriber {
                        id: s.id,
                        contact: s.contact,
                        locale: s.locale,
                        unsubscribe_token: s.unsubscribe_token,
                    };
                    fresh.push(Delivery::pending(b, to, now));
                }
                if seen % 256 == 0 {
                    // A long page does not hold up the other tasks of this worker.
                    tokio::task::yield_now().await;
                }
                if seen >= batch {
                    break;
                }
            }
            if seen < batch {
                next.done = true;
            }
        }
        let created = rows::insert_new_deliveries(&tx, &fresh).await?;
        rows::put_broadcast(&tx, &next, rows::Write::Upsert).await?;
        tx.commit().await.map_err(db)?;
        Ok(Expanded {
            created: usize::try_from(created).unwrap_or(usize::MAX),
            done: next.done,
        })
    }

    async fn claim_due(
        &self,
        channel: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Claim>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let until = now + self.lease();
        let claim = client
            .prepare_cached(
                "WITH due AS (
                     SELECT id FROM crier_deliveries
                      WHERE channel = $1 AND state = 'pending' AND next_attempt_at <= $2
                        AND (lease_expires_at IS NULL OR lease_expires_at <= $2)
                      ORDER BY next_attempt_at, incident_id COLLATE \"C\", seq,
                               delivery_id COLLATE \"C\"
                      LIMIT $3
                      FOR UPDATE SKIP LOCKED)
                 UPDATE crier_deliveries d
                    SET lease_owner = $4, lease_expires_at = $5, attempts = d.attempts + 1
                   FROM due WHERE d.id = due.id
                 RETURNING d.payload, d.attempts, d.lease_expires_at, d.next_attempt_at",
            )
            .await
            .map_err(db)?;
        let found = client
            .query(
                &claim,
                &[&channel, &now, &sql_limit(limit), &node_id(), &until],
            )
            .await
            .map_err(db)?;
        let mut out = Vec::with_capacity(found.len());
        for r in &found {
            let mut d = rows::delivery_from_row(r)?;
            let attempts: i32 = r.try_get(1).map_err(db)?;
            let until: DateTime<Utc> = r.try_get(2).map_err(db)?;
            let due: DateTime<Utc> = r.try_get(3).map_err(db)?;
            d.state = DeliveryState::InFlight;
            d.attempts = to_u32("attempts", attempts)?;
            d.updated_at = now;
            let lease = Lease {
                attempt: d.attempts,
                until: Some(until),
            };
            out.push((due, Claim { delivery: d, lease }));
        }
        // An UPDATE returns its rows in no particular order: due order, then sled's key order.
        out.sort_by(|(x, a), (y, b)| {
            let ka = (x, a.delivery.incident_id, a.delivery.seq, a.delivery.id);
            let kb = (y, b.delivery.incident_id, b.delivery.seq, b.delivery.id);
            ka.cmp(&kb)
        });
        Ok(out.into_iter().map(|(_, c)| c).collect())
    }

    /// Pending and unleased at its due time; held by a lease, at the lease's expiry (when a
    /// dead node's claim comes back: a node with nothing else to do wakes for it then instead
    /// of sleeping its whole idle wait; a live node's claim is recorded before that and the
    /// wake-up finds nothing).
    async fn next_due(&self, channel: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT least(
                     (SELECT next_attempt_at FROM crier_deliveries
                       WHERE channel = $1 AND state = 'pending' AND lease_owner IS NULL
                       ORDER BY next_attempt_at LIMIT 1),
                     (SELECT min(greatest(next_attempt_at, lease_expires_at))
                        FROM crier_deliveries
                       WHERE channel = $1 AND state = 'pending'
                         AND lease_expires_at IS NOT NULL))",
                &[&channel],
            )
            .await
            .map_err(db)?;
        let at: Option<DateTime<Utc>> = row.try_get(0).map_err(db)?;
        Ok(at.map(millis))
    }

    /// One statement, fenced by the claim's attempt and lease expiry; the lease is cleared.
    /// The `receipt` column is [`Outbox::index_receipt`]'s, as sled's receipt index is.
    async fn record(&self, d: &Delivery, lease: Lease) -> Result<(), StoreError> {
        let Some(until) = lease.until else {
            return Err(lease_lost(d, lease));
        };
        let finished = match d.state {
            DeliveryState::Pending | DeliveryState::InFlight => None,
            _ => Some(d.updated_at),
        };
        let payload = codec::encode(d);
        let client = self.client().await?;
        let record = client
            .prepare_cached(
                "UPDATE crier_deliveries
                    SET payload = $4, state = $5, attempts = $6, next_attempt_at = $7,
                        last_error = $8, finished_at = $9, delivery_state = $10,
                        parts_done = $11, provider_status = $12, provider_error = $13,
                        lease_owner = NULL, lease_expires_at = NULL
                  WHERE id = $1 AND state = 'pending' AND attempts = $2
                    AND lease_expires_at = $3",
            )
            .await
            .map_err(db)?;
        let n = client
            .execute(
                &record,
                &[
                    &d.idempotency_key,
                    &to_i32("attempt", lease.attempt)?,
                    &until,
                    &payload,
                    &rows::delivery_claim_state(d.state),
                    &i32::try_from(d.attempts).unwrap_or(i32::MAX),
                    &d.next_at,
                    &d.last_error,
                    &finished,
                    &rows::word(&d.state)?,
                    &to_i32("parts_done", d.parts_done)?,
                    &d.provider_status,
                    &d.provider_error.map(i64::from),
                ],
            )
            .await
            .map_err(db)?;
        if n == 1 {
            return Ok(());
        }
        // Refused by the fence. The same report made again, because the answer to the first
        // was lost on its way back (a restart, a dropped connection: the dispatcher retries),
        // finds the row exactly as it left it: done, not a lost lease. Another claim's report
        // differs at least in its time.
        let landed = client
            .prepare_cached("SELECT payload FROM crier_deliveries WHERE id = $1")
            .await
            .map_err(db)?;
        let row = client
            .query_opt(&landed, &[&d.idempotency_key])
            .await
            .map_err(db)?;
        let stored: Option<Vec<u8>> = row.map(|r| r.try_get(0)).transpose().map_err(db)?;
        if stored.is_some_and(|p| p == payload) {
            return Ok(());
        }
        Err(lease_lost(d, lease))
    }

    /// Fenced as [`Outbox::record`]; the lease is kept and extended to `CLAIM_LEASE` from now
    /// (never shortened), so a long multi-part send keeps its claim. The returned lease carries
    /// the new expiry, which the fence checks from now on.
    async fn record_progress(&self, d: &Delivery, lease: Lease) -> Result<Lease, StoreError> {
        let Some(until) = lease.until else {
            return Err(lease_lost(d, lease));
        };
        let extended = self.clock().now() + self.lease();
        let client = self.client().await?;
        let progress = client
            .prepare_cached(
                "UPDATE crier_deliveries
                    SET payload = $4, parts_done = $5, delivery_state = $6,
                        lease_expires_at = greatest(lease_expires_at, $7)
                  WHERE id = $1 AND state = 'pending' AND attempts = $2
                    AND lease_expires_at = $3
                 RETURNING lease_expires_at",
            )
            .await
            .map_err(db)?;
        let row = client
            .query_opt(
                &progress,
                &[
                    &d.idempotency_key,
                    &to_i32("attempt", lease.attempt)?,
                    &until,
                    &codec::encode(d),
                    &to_i32("parts_done", d.parts_done)?,
                    &rows::word(&d.state)?,
                    &extended,
                ],
            )
            .await
            .map_err(db)?;
        let Some(row) = row else {
            return Err(lease_lost(d, lease));
        };
        let until: DateTime<Utc> = row.try_get(0).map_err(db)?;
        Ok(Lease {
            attempt: lease.attempt,
            until: Some(until),
        })
    }

    /// A receipt names one delivery, the last one indexed under it (as sled's receipt index
    /// keeps it); the record itself is not changed.
    async fn index_receipt(&self, receipt: &str, d: &Delivery) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        tx.execute(
            "UPDATE crier_deliveries SET receipt = NULL WHERE receipt = $1 AND id <> $2",
            &[&receipt, &d.idempotency_key],
        )
        .await
        .map_err(db)?;
        tx.execute(
            "UPDATE crier_deliveries SET receipt = $1 WHERE id = $2",
            &[&receipt, &d.idempotency_key],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn record_provider_status(
        &self,
        receipt: &str,
        status: &str,
        error: Option<u32>,
        now: DateTime<Utc>,
        supersedes: impl Fn(Option<&str>) -> bool + Send,
    ) -> Result<Option<Delivery>, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        // Locked until the commit: two callbacks for one message at once are applied one after
        // the other, the second judged against the first's status.
        let row = tx
            .query_opt(
                "SELECT payload, id FROM crier_deliveries WHERE receipt = $1 FOR UPDATE",
                &[&receipt],
            )
            .await
            .map_err(db)?;
        let Some(r) = row else { return Ok(None) };
        let mut d = rows::delivery_from_row(&r)?;
        let key: String = r.try_get(1).map_err(db)?;
        if !supersedes(d.provider_status.as_deref()) {
            return Ok(Some(d));
        }
        d.provider_status = Some(status.to_owned());
        d.provider_error = error;
        d.updated_at = now;
        tx.execute(
            "UPDATE crier_deliveries
                SET payload = $2, provider_status = $3, provider_error = $4
              WHERE id = $1",
            &[
                &key,
                &codec::encode(&d),
                &d.provider_status,
                &d.provider_error.map(i64::from),
            ],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Some(d))
    }

    /// Nothing to do: claims are leases, and a claim left by a node that stopped (this one's
    /// earlier run or another) is due again when its lease runs out.
    async fn recover_in_flight(&self, _now: DateTime<Utc>) -> Result<usize, StoreError> {
        Ok(0)
    }

    async fn deliveries_page(
        &self,
        incident: Ulid,
        after: Option<DeliveryCursor>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let client = self.client().await?;
        let (seq, id) = match after {
            Some(c) => (Some(i64::from(c.seq)), Some(c.id.to_string())),
            None => (None, None),
        };
        let found = client
            .query(
                "SELECT payload, lease_owner IS NOT NULL FROM crier_deliveries
                 WHERE incident_id = $1
                   AND ($2::bigint IS NULL
                        OR seq > $2 OR (seq = $2 AND delivery_id COLLATE \"C\" > $3))
                 ORDER BY seq, delivery_id COLLATE \"C\"
                 LIMIT $4",
                &[&incident.to_string(), &seq, &id, &sql_limit(limit)],
            )
            .await
            .map_err(db)?;
        let mut out = Vec::with_capacity(found.len());
        for r in &found {
            let mut d = rows::delivery_from_row(r)?;
            let leased: bool = r.try_get(1).map_err(db)?;
            if leased && d.state == DeliveryState::Pending {
                d.state = DeliveryState::InFlight;
            }
            out.push(d);
        }
        Ok(out)
    }

    /// Unreadable records are left out, as the sled store does.
    async fn broadcasts_of_all(&self) -> Result<Vec<Broadcast>, StoreError> {
        let client = self.client().await?;
        let found = client
            .query(
                "SELECT body::text FROM crier_broadcasts
                 ORDER BY incident_id COLLATE \"C\", seq, channel COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(db)?;
        Ok(found.iter().filter_map(|r| broadcast_of(r).ok()).collect())
    }

    async fn broadcast(
        &self,
        incident: Ulid,
        seq: u32,
        channel: &str,
    ) -> Result<Option<Broadcast>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT body::text FROM crier_broadcasts
                 WHERE incident_id = $1 AND seq = $2 AND channel = $3",
                &[&incident.to_string(), &i64::from(seq), &channel],
            )
            .await
            .map_err(db)?;
        row.as_ref().map(broadcast_of).transpose()
    }

    async fn broadcasts_of(&self, incident: Ulid) -> Result<Vec<Broadcast>, StoreError> {
        let client = self.client().await?;
        let found = client
            .query(
                "SELECT body::text FROM crier_broadcasts WHERE incident_id = $1
                 ORDER BY seq, channel COLLATE \"C\"",
                &[&incident.to_string()],
            )
            .await
            .map_err(db)?;
        found.iter().map(broadcast_of).collect()
    }

    /// One transaction over the incident's dead rows, locked; in (seq, id) order, as sled
    /// walks them.
    async fn requeue_dead(
        &self,
        incident: Ulid,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let dead = tx
            .query(
                "SELECT payload, id FROM crier_deliveries
                 WHERE incident_id = $1 AND delivery_state = 'dead'
                 ORDER BY seq, delivery_id COLLATE \"C\"
                 FOR UPDATE",
                &[&incident.to_string()],
            )
            .await
            .map_err(db)?;
        let mut channels = Vec::with_capacity(dead.len());
        for r in &dead {
            let mut d = rows::delivery_from_row(r)?;
            let key: String = r.try_get(1).map_err(db)?;
            if d.state != DeliveryState::Dead {
                return Err(corrupt(
                    "delivery",
                    format!(
                        "{key} is {} in its record, dead in its row",
                        d.state.as_str()
                    ),
                ));
            }
            d.state = DeliveryState::Pending;
            d.attempts = 0;
            d.next_at = now;
            d.updated_at = now;
            tx.execute(
                "UPDATE crier_deliveries
                    SET payload = $2, state = 'pending', attempts = 0, next_attempt_at = $3,
                        finished_at = NULL, delivery_state = 'pending',
                        lease_owner = NULL, lease_expires_at = NULL
                  WHERE id = $1",
                &[&key, &codec::encode(&d), &now],
            )
            .await
            .map_err(db)?;
            channels.push(d.channel);
        }
        tx.commit().await.map_err(db)?;
        Ok(channels)
    }

    /// Pending rows no live lease holds (by the server's clock), from the due index.
    async fn queue_depth(&self) -> Result<(usize, Option<DateTime<Utc>>), StoreError> {
        let client = self.client().await?;
        let now = self.clock().now();
        let row = client
            .query_one(
                "SELECT count(*), min(next_attempt_at) FROM crier_deliveries
                 WHERE state = 'pending'
                   AND (lease_expires_at IS NULL OR lease_expires_at <= $1)",
                &[&now],
            )
            .await
            .map_err(db)?;
        let n: i64 = row.try_get(0).map_err(db)?;
        let oldest: Option<DateTime<Utc>> = row.try_get(1).map_err(db)?;
        Ok((usize::try_from(n).unwrap_or(0), oldest.map(millis)))
    }
}
