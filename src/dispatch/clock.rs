//! Time for the dispatcher. Wall-clock UTC for records, but advanced by tokio's clock, so tests
//! that pause and advance tokio time (`tokio::time::pause`) move the dispatcher's "now" too and
//! backoff schedules can be tested without sleeping.

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// A UTC clock anchored at creation and advanced by tokio's (possibly paused) clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base_utc: DateTime<Utc>,
    base: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            base_utc: Utc::now(),
            base: Instant::now(),
        }
    }

    /// A clock that reads `start` now and advances from there (tests and rehearsals of a given
    /// day, e.g. the night the clocks change).
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Clock {
            base_utc: start,
            base: Instant::now(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = Instant::now().saturating_duration_since(self.base);
        self.base_utc + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
