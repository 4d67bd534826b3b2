//! A channel's rate shared by every node on one database (migration 9).
//!
//! Why: each node's dispatcher paces a channel's sends with a token bucket in its own memory, so
//! two nodes would send up to twice the channel's `rate` — and a provider's limit is per account
//! (Twilio's messages per second per sender, a Mastodon account's posts), not per node. Here the
//! bucket is one row: a node takes a few tokens at a time in one statement, which refills the
//! bucket for the time since it was last taken from and subtracts what is taken, and waits as
//! long as the bucket is short. Times are the taking node's clock; the row's time never goes
//! back, so a node whose clock is behind refills nothing until its clock catches up (slower,
//! never faster than the rate).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{db, PgStore};
use crate::channels::Rate;
use crate::store::StoreError;

/// The longest wait [`PgStore::take_rate`] answers; a longer one (a bucket far overdrawn by
/// many nodes at once) is waited in steps, each taking again.
const MAX_WAIT: Duration = Duration::from_secs(3600);

impl PgStore {
    /// Takes `k` tokens from channel `channel`'s shared bucket (at most `rate.n` tokens, refilled
    /// at `rate.per_second()`) at `now`; returns how long to wait before spending them (zero
    /// when the bucket held them). A bucket seen for the first time starts full.
    pub async fn take_rate(
        &self,
        channel: &str,
        rate: Rate,
        k: u32,
        now: DateTime<Utc>,
    ) -> Result<Duration, StoreError> {
        let per_second = rate.per_second();
        let client = self.client().await?;
        let take = client
            .prepare_cached(
                "INSERT INTO crier_rate AS r (channel, tokens, at)
                 VALUES ($1, $2::float8 - $3::float8, $4::timestamptz)
                 ON CONFLICT (channel) DO UPDATE SET
                     tokens = LEAST($2::float8, r.tokens
                         + GREATEST(0, EXTRACT(EPOCH FROM ($4::timestamptz - r.at))::float8)
                           * $5::float8) - $3::float8,
                     at = GREATEST(r.at, $4::timestamptz)
                 RETURNING tokens",
            )
            .await
            .map_err(db)?;
        let row = client
            .query_one(
                &take,
                &[
                    &channel,
                    &f64::from(rate.n),
                    &f64::from(k),
                    &now,
                    &per_second,
                ],
            )
            .await
            .map_err(db)?;
        let tokens: f64 = row.try_get(0).map_err(db)?;
        Ok(wait_for(tokens, per_second))
    }
}

/// How long until a bucket holding `tokens` (negative: owed) is back at zero.
fn wait_for(tokens: f64, per_second: f64) -> Duration {
    if tokens >= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(-tokens / per_second)
        .unwrap_or(MAX_WAIT)
        .min(MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::pg::testdb::TestDb;
    use chrono::TimeZone;

    fn at(ms: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap() + chrono::Duration::milliseconds(ms)
    }

    /// Two nodes (two pools on one database) share one bucket per channel: what one takes, the
    /// other waits for; it refills at the rate up to its size; a node whose clock is behind
    /// gets no refill from it.
    #[tokio::test]
    async fn two_nodes_share_one_bucket_per_channel() {
        let Some(db) = TestDb::create("sharedrate").await else {
            return;
        };
        let a = PgStore::with_pg(db.pg(2), Clock::new()).await.unwrap();
        let b = PgStore::with_pg(db.pg(2), Clock::new()).await.unwrap();
        // 10 per second, bursts of 10.
        let rate = Rate::parse("10/s").unwrap();
        let ms = Duration::from_millis;
        assert_eq!(a.take_rate("sms", rate, 6, at(0)).await.unwrap(), ms(0));
        // 4 left: the other node's 6 are 2 short, 0.2 s at 10/s.
        assert_eq!(b.take_rate("sms", rate, 6, at(0)).await.unwrap(), ms(200));
        // Another channel's bucket is its own.
        assert_eq!(
            b.take_rate("mastodon", rate, 10, at(0)).await.unwrap(),
            ms(0)
        );
        // 0.5 s later: -2 + 5 = 3 tokens; taking 3 leaves none.
        assert_eq!(a.take_rate("sms", rate, 3, at(500)).await.unwrap(), ms(0));
        assert_eq!(b.take_rate("sms", rate, 1, at(500)).await.unwrap(), ms(100));
        // Refilled for an hour: full at 10, not 36,000.
        assert_eq!(
            a.take_rate("sms", rate, 10, at(3_600_000)).await.unwrap(),
            ms(0)
        );
        assert_eq!(
            a.take_rate("sms", rate, 1, at(3_600_000)).await.unwrap(),
            ms(100)
        );
        // A node whose clock is 10 s behind refills nothing, and does not set the time back.
        assert_eq!(
            b.take_rate("sms", rate, 1, at(3_590_000)).await.unwrap(),
            ms(200)
        );
        assert_eq!(
            a.take_rate("sms", rate, 1, at(3_600_300)).await.unwrap(),
            ms(0)
        );
    }

    #[test]
    fn a_wait_is_how_long_the_owed_tokens_take_capped() {
        assert_eq!(wait_for(0.0, 10.0), Duration::ZERO);
        assert_eq!(wait_for(5.0, 10.0), Duration::ZERO);
        assert_eq!(wait_for(-5.0, 10.0), Duration::from_millis(500));
        assert_eq!(wait_for(-1e12, 1.0), MAX_WAIT);
        assert_eq!(wait_for(f64::NEG_INFINITY, 1.0), MAX_WAIT);
    }
}
