//! Deliveries: one record per (update, channel, recipient), the unit the dispatcher sends,
//! retries and reports on. Its idempotency key is derived from that triple, so the same update
//! can never be queued twice for one recipient on one channel, and providers that accept a key
//! see the same one on every retry.

use super::{Contact, Locale};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ulid::Ulid;

/// Where a delivery stands.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    PartialOrd,
    Ord,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its due time (first attempt or a retry).
    Pending,
    /// Claimed by a worker; being sent.
    InFlight,
    /// The provider accepted it.
    Delivered,
    /// Retries exhausted; visible, and can be requeued.
    Dead,
    /// Permanently refused by the provider (invalid number, 5xx SMTP); not retried.
    Rejected,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 5] = [
        DeliveryState::Pending,
        DeliveryState::InFlight,
        DeliveryState::Delivered,
        DeliveryState::Dead,
        DeliveryState::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::InFlight => "in_flight",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
            DeliveryState::Rejected => "rejected",
        }
    }

    /// Nothing more will happen to it unless someone requeues it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryState::Delivered | DeliveryState::Dead | DeliveryState::Rejected
        )
    }
}

/// Who a delivery goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A subscriber, with the contact and locale as they were at expansion time.
    Subscriber {
        id: Ulid,
        contact: Contact,
        locale: Locale,
        unsubscribe_token: String,
    },
    /// The channel's own fixed target (webhook URL, social account).
    Endpoint,
}

impl Target {
    /// The recipient part of the idempotency triple.
    pub fn recipient(&self) -> &str {
        match self {
            Target::Subscriber { contact, .. } => contact.address(),
            Target::Endpoint => "endpoint",
        }
    }
}

/// The idempotency key of (update, channel, recipient): 128 bits of SHA-256, hex.
pub fn idempotency_key(update_id: Ulid, channel: &str, recipient: &str) -> String {
    hex::encode(key_bytes(update_id, channel, recipient))
}

fn key_bytes(update_id: Ulid, channel: &str, recipient: &str) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(update_id.to_bytes());
    h.update([0]);
    h.update(channel.as_bytes());
    h.update([0]);
    h.update(recipient.as_bytes());
    let d = h.finalize();
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    k
}

impl Delivery {
    /// The new pending delivery of broadcast `b` to `target`, as every backend creates it on
    /// expansion. Its id is its idempotency key, so the record of (update, channel, recipient)
    /// has one fixed identity: re-expanding after a crash finds it instead of making a second.
    pub fn pending(b: &Broadcast, target: Target, now: DateTime<Utc>) -> Delivery {
        let key = key_bytes(b.update_id, &b.channel, target.recipient());
        Delivery {
            id: Ulid::from_bytes(key),
            incident_id: b.incident_id,
            seq: b.seq,
            update_id: b.update_id,
            channel: b.channel.clone(),
            target,
            idempotency_key: hex::encode(key),
            state: DeliveryState::Pending,
            attempts: 0,
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
}

/// One delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: Ulid,
    pub incident_id: Ulid,
    /// The update's position in the incident's timeline.
    pub seq: u32,
    pub update_id: Ulid,
    pub channel: String,
    pub target: Target,
    pub idempotency_key: String,
    pub state: DeliveryState,
    /// Send attempts made so far.
    pub attempts: u32,
    /// Parts of a threaded message already accepted (a retry resumes after them).
    pub parts_done: u32,
    pub next_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub receipt: Option<String>,
    /// What the provider later reported about the message (Twilio status callback):
    /// e.g. `delivered`, `undelivered`, `failed`, with its error code.
    #[serde(default)]
    pub provider_status: Option<String>,
    #[serde(default)]
    pub provider_error: Option<u32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A delivery claimed for sending: the delivery as the claim left it (in flight, this attempt
/// counted) and the lease under which its claimer reports what became of it. The claimer hands
/// the lease back with every report on the delivery (`store::port::Outbox::record`).
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub delivery: Delivery,
    pub lease: Lease,
}

/// What a claim holds a delivery by. A store whose outbox several nodes share accepts a report
/// only while this claim still holds the delivery (no later claim has taken it over), so a node
/// whose lease ran out cannot overwrite a newer claim's outcome; a store with one claimer (sled:
/// claims live in the process's memory) has nothing to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The attempt this claim is (the delivery's `attempts` once claimed): the claim's fencing
    /// token.
    pub attempt: u32,
    /// Until when the delivery is the claimer's alone; after it another node may claim it
    /// again. `None`: until its outcome is recorded or the process ends.
    pub until: Option<DateTime<Utc>>,
}

/// Where a listing of an incident's deliveries resumes: after the delivery (`seq`, `id`).
/// Listings go in (seq, id) order, so a delivery recorded meanwhile keeps its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryCursor {
    pub seq: u32,
    pub id: Ulid,
}

impl DeliveryCursor {
    /// The cursor just past `d`.
    pub fn after(d: &Delivery) -> Self {
        DeliveryCursor {
            seq: d.seq,
            id: d.id,
        }
    }
}

/// A broadcast: one update going out on one channel. Subscriber audiences are expanded into
/// deliveries in batches; `cursor` is the last subscriber key expanded, so a crash resumes there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Broadcast {
    pub incident_id: Ulid,
    pub seq: u32,
    pub update_id: Ulid,
    pub channel: String,
    pub subscribers: bool,
    pub cursor: Option<Vec<u8>>,
    pub done: bool,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_key_is_stable_and_distinct_per_triple() {
        let u = Ulid::new();
        let k = idempotency_key(u, "sms", "+358401234567");
        assert_eq!(k.len(), 32);
        assert_eq!(k, idempotency_key(u, "sms", "+358401234567"));
        assert_ne!(k, idempotency_key(u, "sms2", "+358401234567"));
        assert_ne!(k, idempotency_key(u, "sms", "+358401234568"));
        assert_ne!(k, idempotency_key(Ulid::new(), "sms", "+358401234567"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(idempotency_key(u, "ab", "c"), idempotency_key(u, "a", "bc"));
    }
}
