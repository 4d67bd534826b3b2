//! crier's one clock. Every "now" that decides something — the dispatcher's due times, the
//! scheduler's ticks, sessions and TOTP, the API's records — comes from one [`Clock`] built by
//! the server and injected, so a rehearsal of a given day (`Config::clock_start`) moves all of
//! them together.
//!
//! It lives at the crate's root, not in `dispatch/`, because the store reads it too (a backup's
//! creation time, since when the store is broken) and the store depends on no layer above it;
//! `dispatch::Clock` names the same type for the code that has always imported it from there.
//!
//! In production the clock is the system's wall clock ([`Clock::wall`]): UTC as the system
//! keeps it, so it never drifts from it (a clock anchored once and advanced by a monotonic
//! timer falls behind after a suspend, which the monotonic clock does not count, and ignores a
//! clock step). Tests and rehearsals use an anchored clock ([`Clock::new`],
//! [`Clock::starting_at`]): UTC at an anchor, advanced by tokio's clock, so tests that pause and
//! advance tokio time (`tokio::time::pause`) move "now" too and backoff schedules can be tested
//! without sleeping.

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// A UTC clock: the system's, or one anchored at an instant and advanced by tokio's.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    anchor: Option<(DateTime<Utc>, Instant)>,
}

impl Clock {
    /// The system's wall clock (production).
    pub fn wall() -> Self {
        Clock { anchor: None }
    }

    /// A clock that reads the wall clock now and advances with tokio's (possibly paused) clock.
    pub fn new() -> Self {
        Clock::starting_at(Utc::now())
    }

    /// A clock that reads `start` now and advances from there with tokio's clock (tests and
    /// rehearsals of a given day, e.g. the night the clocks change).
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Clock {
            anchor: Some((start, Instant::now())),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self.anchor {
            None => Utc::now(),
            Some((base_utc, base)) => {
                let elapsed = Instant::now().saturating_duration_since(base);
                base_utc + chrono::Duration::from_std(elapsed).unwrap_or_default()
            }
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The wall clock follows the system's UTC, not tokio's timer: here tokio's clock jumps an
    /// hour (as a monotonic clock would differ from UTC after a suspend or a clock step) and the
    /// wall clock stays with the system while an anchored clock moves the hour.
    #[tokio::test(start_paused = true)]
    async fn the_wall_clock_is_the_systems_and_an_anchored_one_follows_tokio() {
        let wall = Clock::wall();
        let anchored = Clock::new();
        tokio::time::advance(Duration::from_secs(3600)).await;
        let system = Utc::now();
        assert!(
            (wall.now() - system).num_seconds().abs() < 60,
            "{}",
            wall.now()
        );
        assert!(
            (anchored.now() - system - chrono::Duration::hours(1))
                .num_seconds()
                .abs()
                < 60,
            "{}",
            anchored.now()
        );
    }
}
