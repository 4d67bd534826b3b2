//! Delivery metrics for `/metrics` (Prometheus text): outcomes per channel and a send-latency
//! histogram. Queue depth and the oldest pending age are read from the store at scrape time.
//! On PostgreSQL, where several nodes share the outbox and claims are leases, also the
//! connection pool (read at scrape time) and the leases: claims this node holds now, outcomes
//! refused because the lease was lost, and claims not sent because their lease ran out while
//! they waited. On sled (one claimer, no leases, no pool) those lines are absent.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

#[derive(Default)]
struct Hist {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Counters shared by the dispatcher's tasks.
#[derive(Default)]
pub struct Metrics {
    outcomes: Mutex<BTreeMap<(String, &'static str), u64>>,
    latency: Mutex<BTreeMap<String, Hist>>,
    /// Open, published incidents whose promised next update is past due (the scheduler sets it
    /// every tick).
    promises_overdue: AtomicU64,
    /// Each channel's latest failed send: why (the delivery's reason) and when.
    last_error: Mutex<BTreeMap<String, (String, chrono::DateTime<chrono::Utc>)>>,
    /// Sends observed so far (all channels), for [`trim_due`].
    sends: AtomicU64,
    /// The database, when the store is PostgreSQL: its pool is read at scrape time, and the
    /// lease lines below are rendered only then.
    pg: OnceLock<crate::pg::Pg>,
    /// This node's leadership among the nodes on one database (rendered with the pool lines).
    leader: OnceLock<crate::leadership::LeaderView>,
    /// Claims this node holds now (claimed, outcome not yet recorded or dropped).
    claims_held: AtomicU64,
    /// Outcomes the store refused because the claim's lease was lost.
    lease_lost: AtomicU64,
    /// Claims not sent because their lease ran out while they waited (rate limit, a permit).
    lease_expired: AtomicU64,
}

/// One claim held by this node: counted in [`Metrics`] while it lives.
pub struct ClaimHeld(Arc<Metrics>);

impl Drop for ClaimHeld {
    fn drop(&mut self) {
        self.0.claims_held.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Sends between two [`give_back_free_memory`] calls during a fan-out.
pub const TRIM_EVERY: u64 = 5_000;

/// Whether the `n`th send observed (counting from 1) gives freed heap memory back.
pub fn trim_due(n: u64) -> bool {
    n > 0 && n.is_multiple_of(TRIM_EVERY)
}

/// Hands the heap's free pages back to the kernel (glibc `malloc_trim(0)`). A big fan-out frees
/// sled's copied nodes and the sends' buffers into holes between live allocations that glibc's
/// top-of-heap trim cannot reach; left alone they stay resident (a 200,000-subscriber fan-out
/// held ≈ 60 MB free in a 150 MB heap, docs/BENCHMARKS-HISTORY.md). Every [`TRIM_EVERY`] sends,
/// off the async workers; it takes milliseconds.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn give_back_free_memory() {
    extern "C" {
        fn malloc_trim(pad: usize) -> std::os::raw::c_int;
    }
    // SAFETY: malloc_trim only returns whole free pages of glibc's heap to the kernel; it takes
    // the allocator's own locks and touches no memory the program owns.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back_free_memory() {}

impl Metrics {
    /// Sets the number of overdue promises (the scheduler, every tick).
    pub fn set_promises_overdue(&self, n: u64) {
        self.promises_overdue.store(n, Ordering::Relaxed);
    }

    /// The number of overdue promises as of the scheduler's last tick.
    pub fn promises_overdue(&self) -> u64 {
        self.promises_overdue.load(Ordering::Relaxed)
    }

    /// Counts one send's outcome (`delivered`, `retry`, `rejected`, `dead`) and its latency.
    pub fn observe(&self, channel: &str, outcome: &'static str, took: Duration) {
        if let Ok(mut m) = self.outcomes.lock() {
            *m.entry((channel.to_owned(), outcome)).or_default() += 1;
        }
        if let Ok(mut m) = self.latency.lock() {
            let h = m.entry(channel.to_owned()).or_default();
            let s = took.as_secs_f64();
            for (i, b) in BUCKETS.iter().enumerate() {
                if s <= *b {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += s;
        }
        if trim_due(self.sends.fetch_add(1, Ordering::Relaxed) + 1) {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn_blocking(give_back_free_memory);
                }
                Err(_) => give_back_free_memory(),
            }
        }
    }

    /// Notes a channel's failed send (a retry or a dead delivery), for the console's channel
    /// health.
    pub fn note_error(&self, channel: &str, reason: &str, at: chrono::DateTime<chrono::Utc>) {
        if let Ok(mut m) = self.last_error.lock() {
            m.insert(channel.to_owned(), (reason.chars().take(300).collect(), at));
        }
    }

    /// A channel's latest failed send since start: its reason and when.
    pub fn last_error(&self, channel: &str) -> Option<(String, chrono::DateTime<chrono::Utc>)> {
        self.last_error
            .lock()
            .ok()
            .and_then(|m| m.get(channel).cloned())
    }

    /// The store is PostgreSQL on `pg`: `/metrics` shows its pool and the lease figures.
    pub fn set_pg(&self, pg: crate::pg::Pg) {
        let _ = self.pg.set(pg);
    }

    /// This node's leadership: `/metrics` shows `crier_leader` beside the pool lines.
    pub fn set_leadership(&self, view: crate::leadership::LeaderView) {
        let _ = self.leader.set(view);
    }

    /// Counts a claim held until the guard drops.
    pub fn hold_claim(self: &Arc<Self>) -> ClaimHeld {
        self.claims_held.fetch_add(1, Ordering::Relaxed);
        ClaimHeld(self.clone())
    }

    /// Counts an outcome refused because the claim's lease was lost.
    pub fn note_lease_lost(&self) {
        self.lease_lost.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a claim dropped unsent because its lease had run out.
    pub fn note_lease_expired(&self) {
        self.lease_expired.fetch_add(1, Ordering::Relaxed);
    }

    /// (claims held now, outcomes refused for a lost lease, leases expired before a send).
    pub fn lease_figures(&self) -> (u64, u64, u64) {
        (
            self.claims_held.load(Ordering::Relaxed),
            self.lease_lost.load(Ordering::Relaxed),
            self.lease_expired.load(Ordering::Relaxed),
        )
    }

    /// The PostgreSQL pool's and the leases' lines (nothing on sled).
    fn render_pg(&self, out: &mut String) {
        let Some(pg) = self.pg.get() else { return };
        let pool = pg.pool_status();
        let (held, lost, expired) = self.lease_figures();
        let _ = write!(
            out,
            "# HELP crier_pg_pool_max_size Connections the PostgreSQL pool may open.\n\
             # TYPE crier_pg_pool_max_size gauge\n\
             crier_pg_pool_max_size {}\n\
             # HELP crier_pg_pool_size Connections the PostgreSQL pool holds now (in use or idle).\n\
             # TYPE crier_pg_pool_size gauge\n\
             crier_pg_pool_size {}\n\
             # HELP crier_pg_pool_available Idle connections ready in the PostgreSQL pool.\n\
             # TYPE crier_pg_pool_available gauge\n\
             crier_pg_pool_available {}\n\
             # HELP crier_pg_pool_waiting Tasks waiting for a connection from the PostgreSQL pool.\n\
             # TYPE crier_pg_pool_waiting gauge\n\
             crier_pg_pool_waiting {}\n\
             # HELP crier_claims_held Deliveries this node has claimed and not yet finished (their leases it holds).\n\
             # TYPE crier_claims_held gauge\n\
             crier_claims_held {held}\n\
             # HELP crier_lease_lost_outcomes_total Outcomes the store refused: the claim's lease was lost to another claim.\n\
             # TYPE crier_lease_lost_outcomes_total counter\n\
             crier_lease_lost_outcomes_total {lost}\n\
             # HELP crier_lease_expired_before_send_total Claims not sent because their lease ran out while they waited.\n\
             # TYPE crier_lease_expired_before_send_total counter\n\
             crier_lease_expired_before_send_total {expired}\n",
            pool.max_size, pool.size, pool.available, pool.waiting
        );
        if let Some(view) = self.leader.get() {
            let _ = write!(
                out,
                "# HELP crier_leader Whether this node is the elected leader that runs the scheduler and the other singletons (1) or not (0).\n\
                 # TYPE crier_leader gauge\n\
                 crier_leader {}\n",
                u8::from(view.is_leader())
            );
        }
    }

    /// Outcome counts, for tests and status.
    pub fn count(&self, channel: &str, outcome: &'static str) -> u64 {
        self.outcomes
            .lock()
            .map(|m| m.get(&(channel.to_owned(), outcome)).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Appends the Prometheus text exposition.
    pub fn render(&self, out: &mut String) {
        self.render_pg(out);
        let _ = write!(
            out,
            "# HELP crier_promises_overdue Open, published incidents whose promised next update is past due.\n# TYPE crier_promises_overdue gauge\ncrier_promises_overdue {}\n",
            self.promises_overdue()
        );
        out.push_str("# HELP crier_deliveries_total Send attempts by channel and outcome.\n# TYPE crier_deliveries_total counter\n");
        if let Ok(m) = self.outcomes.lock() {
            for ((ch, outcome), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "crier_deliveries_total{{channel=\"{ch}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP crier_send_seconds Time of one send through a channel's adapter.\n# TYPE crier_send_seconds histogram\n");
        if let Ok(m) = self.latency.lock() {
            for (ch, h) in m.iter() {
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "crier_send_seconds_bucket{{channel=\"{ch}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "crier_send_seconds_bucket{{channel=\"{ch}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(out, "crier_send_seconds_sum{{channel=\"{ch}\"}} {}", h.sum);
                let _ = writeln!(
                    out,
                    "crier_send_seconds_count{{channel=\"{ch}\"}} {}",
                    h.count
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_memory_is_given_back_once_per_trim_every_sends() {
        let due: Vec<u64> = (0..=3 * TRIM_EVERY).filter(|n| trim_due(*n)).collect();
        assert_eq!(due, vec![TRIM_EVERY, 2 * TRIM_EVERY, 3 * TRIM_EVERY]);
    }

    #[test]
    fn without_postgresql_no_pool_or_lease_lines_are_rendered_and_claims_are_counted() {
        let m = Arc::new(Metrics::default());
        let held = [m.hold_claim(), m.hold_claim()];
        m.note_lease_lost();
        m.note_lease_expired();
        m.note_lease_expired();
        assert_eq!(m.lease_figures(), (2, 1, 2));
        drop(held);
        assert_eq!(m.lease_figures(), (0, 1, 2));
        let mut out = String::new();
        m.render(&mut out);
        assert!(!out.contains("crier_pg_pool"), "{out}");
        assert!(!out.contains("crier_claims_held"), "{out}");
        assert!(!out.contains("crier_lease_"), "{out}");
        assert!(out.contains("crier_promises_overdue 0"), "{out}");
    }

    #[tokio::test]
    async fn on_postgresql_the_pool_and_lease_lines_are_rendered() {
        let Some(db) = crate::pg::testdb::TestDb::create("metrics").await else {
            return;
        };
        let pg = db.migrated(3).await;
        let m = Arc::new(Metrics::default());
        m.set_pg(pg.clone());
        let (tx, rx) = tokio::sync::watch::channel(false);
        let elected = crate::leadership::Leadership::for_tests(rx);
        m.set_leadership(elected.view());
        let _held = m.hold_claim();
        m.note_lease_lost();
        m.note_lease_expired();
        // One connection out of the pool, in use: size 1, none idle.
        let client = pg.client().await.expect("client");
        let mut out = String::new();
        m.render(&mut out);
        for line in [
            "crier_pg_pool_max_size 3\n",
            "crier_pg_pool_size 1\n",
            "crier_pg_pool_available 0\n",
            "crier_pg_pool_waiting 0\n",
            "crier_claims_held 1\n",
            "crier_lease_lost_outcomes_total 1\n",
            "crier_lease_expired_before_send_total 1\n",
        ] {
            assert!(out.contains(line), "{line:?} missing from:\n{out}");
        }
        // Back in the pool, idle.
        drop(client);
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("crier_pg_pool_available 1\n"), "{out}");
        assert!(out.contains("crier_leader 0\n"), "{out}");
        tx.send_replace(true);
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("crier_leader 1\n"), "{out}");
        elected.step_down();
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("crier_leader 0\n"), "stepped down: {out}");
        // The election gone (its sender dropped), the view says so.
        tx.send_replace(true);
        drop(tx);
        let again = crate::leadership::Leadership::for_tests(elected.subscribe());
        assert!(!again.view().is_leader(), "no election behind it");
    }

    #[test]
    fn observing_a_trim_send_outside_a_runtime_trims_in_place() {
        let m = Metrics::default();
        for _ in 0..TRIM_EVERY {
            m.observe("sms", "delivered", Duration::from_millis(1));
        }
        assert_eq!(m.count("sms", "delivered"), TRIM_EVERY);
        assert_eq!(m.sends.load(Ordering::Relaxed), TRIM_EVERY);
    }
}
