//! Whether the store can still make writes durable. sled 0.34 applies a write in memory before it
//! reaches the disk, and after one failed write to its log (ENOSPC, EIO) it refuses every later
//! write for good. So a failed group commit leaves the open database holding writes that were
//! answered with an error and unable to take new ones. The flusher records the failure here; the
//! store then refuses reads and writes (so an unacknowledged write is never served) until it has
//! re-opened the database from disk, which forgets the unflushed tail (see `SledStore::recover`).
//! `/healthz` and the shutdown message read the same state.

use crate::clock::Clock;
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::Notify;

/// Why and since when the store refuses service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub since: DateTime<Utc>,
    pub reason: String,
}

/// Shared between the store, its flusher and the recovery task.
#[derive(Debug)]
pub struct Health {
    /// Set with `broken`: lets the hot path skip the mutex while all is well.
    is_broken: AtomicBool,
    broken: Mutex<Option<Broken>>,
    /// Writes answered with an error because their group commit failed (since start-up).
    failed_writes: AtomicU64,
    /// Wakes the recovery task after a failure (and when the store is dropped, so it can end).
    pub(crate) wake: Notify,
    /// The store's clock: when it broke.
    clock: Clock,
}

impl Health {
    pub(crate) fn new(clock: Clock) -> Health {
        Health {
            is_broken: AtomicBool::new(false),
            broken: Mutex::new(None),
            failed_writes: AtomicU64::new(0),
            wake: Notify::new(),
            clock,
        }
    }

    /// The current failure, if any.
    pub fn broken(&self) -> Option<Broken> {
        if !self.is_broken.load(Ordering::Acquire) {
            return None;
        }
        self.broken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Writes answered with an error because their flush failed, since start-up.
    pub fn failed_writes(&self) -> u64 {
        self.failed_writes.load(Ordering::Relaxed)
    }

    /// Records a failed group commit of `writes` waiters. Called before they are answered, so a
    /// client that got the error and reads again is refused rather than shown its write.
    pub(crate) fn fail(&self, reason: &str, writes: usize) {
        self.failed_writes
            .fetch_add(writes as u64, Ordering::Relaxed);
        let mut b = self.broken.lock().unwrap_or_else(|p| p.into_inner());
        if b.is_none() {
            *b = Some(Broken {
                since: self.clock.now(),
                reason: reason.to_owned(),
            });
        }
        self.is_broken.store(true, Ordering::Release);
        drop(b);
        self.wake.notify_one();
    }

    /// The store was re-opened from disk and a test write reached it.
    pub(crate) fn recovered(&self) {
        let mut b = self.broken.lock().unwrap_or_else(|p| p.into_inner());
        *b = None;
        self.is_broken.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The time the store broke is the store's clock, not the system's (`/healthz` shows it).
    #[tokio::test(start_paused = true)]
    async fn a_failure_is_dated_by_the_stores_clock() {
        let start = DateTime::parse_from_rfc3339("2001-02-03T04:05:06Z")
            .unwrap()
            .to_utc();
        let health = Health::new(Clock::starting_at(start));
        assert_eq!(health.broken(), None);
        tokio::time::advance(std::time::Duration::from_secs(90)).await;
        health.fail("no space left on device", 3);
        let broken = health.broken().unwrap();
        assert_eq!(broken.since, start + chrono::Duration::seconds(90));
        assert_eq!(broken.reason, "no space left on device");
        assert_eq!(health.failed_writes(), 3);
    }
}
