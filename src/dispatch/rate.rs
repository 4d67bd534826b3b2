//! A token bucket per channel: at most `n` sends per `per`, with bursts up to `n`. Waiting uses
//! tokio time, so paused-time tests can check it without sleeping.

use crate::channels::Rate;
use tokio::time::{Duration, Instant};

/// A token bucket.
#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: Rate) -> Self {
        let capacity = f64::from(rate.n).max(1.0);
        TokenBucket {
            capacity,
            per_second: rate.per_second(),
            tokens: capacity,
            last: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.per_second).min(self.capacity);
        self.last = now;
    }

    /// How long to wait before a token is available (zero if one is), taking it.
    pub fn take(&mut self) -> Duration {
        self.refill();
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.per_second)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn allows_bursts_then_paces() {
        let mut b = TokenBucket::new(Rate {
            n: 10,
            per: Duration::from_secs(1),
        });
        for _ in 0..10 {
            assert_eq!(b.take(), Duration::ZERO);
        }
        let w = b.take();
        assert!(
            w > Duration::from_millis(90) && w <= Duration::from_millis(100),
            "{w:?}"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(b.take(), Duration::ZERO);
    }
}
