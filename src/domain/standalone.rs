//! Standalone messages: what crier sends that is not a timeline update (a notice's firing, a
//! next-update reminder to staff, a maintenance reminder, an alert group's staff detail, a note
//! about an approval), and the (origin, seq) identity that makes posting one idempotent.
//!
//! The seq rules are the domain's, not a backend's: a standalone message's broadcasts and
//! deliveries are keyed by (origin, seq) like an update's, with `seq` at or above
//! [`STANDALONE_BASE`] so it never collides with a timeline position, and derived from what the
//! message is for, so posting it twice (after a crash, from two ticks, from two nodes) finds the
//! first record. Every backend must key them the same way.

use super::Body;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ulid::Ulid;

/// Sequence numbers at or above this belong to standalone messages, not timeline updates.
pub const STANDALONE_BASE: u32 = 0x8000_0000;

/// Minutes are counted from this epoch (2020-01-01T00:00:00Z) for notice firings.
const MINUTE_EPOCH: i64 = 1_577_836_800;

/// The seq of a notice's firing at `instant` (its scheduled minute).
pub fn notice_seq(instant: DateTime<Utc>) -> u32 {
    let minutes = (instant.timestamp() - MINUTE_EPOCH).div_euclid(60).max(0);
    STANDALONE_BASE | u32::try_from(minutes & 0x7FFF_FFFF).unwrap_or(0)
}

/// The seq of the staff reminder for the promise made by update `update_seq`.
pub fn reminder_seq(update_seq: u32) -> u32 {
    STANDALONE_BASE | ((update_seq & 0x1FFF_FFFF) << 2)
}

/// The seq of the public reminder of a maintenance announced by update `update_seq`.
pub fn maintenance_reminder_seq(update_seq: u32) -> u32 {
    STANDALONE_BASE | ((update_seq & 0x1FFF_FFFF) << 2) | 1
}

/// The seq of an alert group's `n`th staff detail message on its incident.
pub fn alert_detail_seq(n: u32) -> u32 {
    STANDALONE_BASE | ((n & 0x1FFF_FFFF) << 2) | 2
}

/// The seq of an approval's `n`th staff message (origin: the approval's id): 1 when it is
/// requested, 2 when it is rejected.
pub fn approval_note_seq(n: u32) -> u32 {
    STANDALONE_BASE | ((n & 0x1FFF_FFFF) << 2) | 3
}

/// What a standalone message says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StandaloneKind {
    /// One firing of a recurring notice.
    Notice {
        notice_id: Ulid,
        scheduled_for: DateTime<Utc>,
        subject: String,
        body: Body,
    },
    /// "The next update on this incident is due at …" — to the staff channels.
    Reminder { due: DateTime<Utc> },
    /// "This maintenance starts at …" — to the maintenance's audience, before it starts.
    MaintenanceReminder { starts: DateTime<Utc> },
    /// Per-alert detail of a monitoring alert group (keys firing, resolving, changing their
    /// summary) — to the intake's staff channels only, never public.
    AlertDetail {
        at: DateTime<Utc>,
        subject: String,
        body: Body,
    },
    /// A note to staff about a write waiting for approval (requested, rejected) — to the
    /// approval's staff channels only, never public.
    StaffNote {
        at: DateTime<Utc>,
        subject: String,
        body: Body,
    },
}

/// A message that is not a timeline update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standalone {
    /// The notice or incident it belongs to.
    pub origin: Ulid,
    pub seq: u32,
    /// Stands in for an update id in idempotency keys; derived from (origin, seq).
    pub update_id: Ulid,
    #[serde(flatten)]
    pub kind: StandaloneKind,
    pub created_at: DateTime<Utc>,
}

impl Standalone {
    /// A message for (origin, seq), with its derived id.
    pub fn new(origin: Ulid, seq: u32, kind: StandaloneKind, now: DateTime<Utc>) -> Standalone {
        let mut h = Sha256::new();
        h.update(origin.to_bytes());
        h.update(seq.to_be_bytes());
        let digest = h.finalize();
        let mut r = [0u8; 16];
        r[6..].copy_from_slice(&digest[..10]);
        let at = match &kind {
            StandaloneKind::Notice { scheduled_for, .. } => *scheduled_for,
            StandaloneKind::Reminder { due } => *due,
            StandaloneKind::MaintenanceReminder { starts } => *starts,
            StandaloneKind::AlertDetail { at, .. } | StandaloneKind::StaffNote { at, .. } => *at,
        };
        let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
        Standalone {
            origin,
            seq,
            update_id: Ulid::from_parts(ms, u128::from_be_bytes(r)),
            kind,
            created_at: now,
        }
    }
}

/// The instant of a notice seq (for display).
pub fn notice_seq_instant(seq: u32) -> Option<DateTime<Utc>> {
    let minutes = i64::from(seq & 0x7FFF_FFFF);
    Utc.timestamp_opt(MINUTE_EPOCH + minutes * 60, 0).single()
}
