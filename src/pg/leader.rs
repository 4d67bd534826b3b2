//! Leader election on a PostgreSQL advisory lock.
//!
//! Each node runs an [`Elector`]: a task with a connection of its own (outside the pool) that
//! tries `pg_try_advisory_lock(key)` while it is not leader, and while it is, re-checks every
//! `recheck` that its backend still holds the lock. PostgreSQL releases a session's advisory lock
//! when the session ends, so when the leader dies, or its connection is cut, another node's next
//! try succeeds. A node learns at once that its connection closed (the task drives the
//! connection itself) and stops being leader; if the connection hangs instead, the next re-check
//! fails. Two nodes can still both believe they lead for a moment (a leader cut off from the
//! database does not know the lock was freed until its check fails), so everything a leader does
//! must stay idempotent, as issue 16 requires.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Pg;

/// The advisory lock key of the singleton leader ("crier-ld").
pub const LEADER_LOCK: i64 = 0x6372_6965_722d_6c64;

/// One node's part in the election. Dropping it ends the task, closing its connection, which
/// frees the lock if it held it.
pub struct Elector {
    leader: watch::Receiver<bool>,
    backend: watch::Receiver<Option<i32>>,
    checks: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Drop for Elector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Elector {
    /// Starts electing on `key`, trying or re-checking every `recheck`.
    pub fn spawn(pg: Pg, key: i64, recheck: Duration) -> Elector {
        let (leader_tx, leader) = watch::channel(false);
        let (backend_tx, backend) = watch::channel(None);
        let checks = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(run(pg, key, recheck, leader_tx, backend_tx, checks.clone()));
        Elector {
            leader,
            backend,
            checks,
            task,
        }
    }

    /// Ends the election for this node: its connection closes, which frees the lock at once if
    /// it held it. [`Elector::is_leader`] may still show the last check's answer; callers that
    /// step down keep their own flag ([`crate::leadership::Leadership::step_down`]).
    pub fn stop(&self) {
        self.task.abort();
    }

    /// Whether this node is leader now, as of its last check.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Follows leadership changes (for the singletons to start and stop).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leader.clone()
    }

    /// The PostgreSQL backend pid of the election connection, while connected.
    pub fn backend_pid(&self) -> Option<i32> {
        *self.backend.borrow()
    }

    /// How many tries and re-checks have completed (for tests and metrics).
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }
}

async fn run(
    pg: Pg,
    key: i64,
    recheck: Duration,
    leader: watch::Sender<bool>,
    backend: watch::Sender<Option<i32>>,
    checks: Arc<AtomicU64>,
) {
    loop {
        match pg.connect_raw().await {
            Err(e) => tracing::warn!(error = %e, "leader election: cannot connect to PostgreSQL"),
            Ok((client, conn)) => {
                let mut conn = tokio::spawn(conn);
                if let Ok(row) = client.query_one("SELECT pg_backend_pid()", &[]).await {
                    backend.send_replace(Some(row.get(0)));
                    loop {
                        let sql = if *leader.borrow() {
                            // Still ours? (A bigint key is classid = high half, objid = low.)
                            "SELECT EXISTS (SELECT 1 FROM pg_locks
                                 WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
                                   AND objsubid = 1
                                   AND ((classid::bigint << 32) | objid::bigint) = $1)"
                        } else {
                            "SELECT pg_try_advisory_lock($1)"
                        };
                        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&key];
                        let held = tokio::select! {
                            r = client.query_one(sql, &params) => match r {
                                Ok(row) => row.get::<_, bool>(0),
                                Err(_) => break,
                            },
                            _ = &mut conn => break,
                        };
                        checks.fetch_add(1, Ordering::Relaxed);
                        leader.send_if_modified(|l| {
                            let changed = *l != held;
                            if changed {
                                tracing::info!(leader = held, "leader election");
                            }
                            *l = held;
                            changed
                        });
                        tokio::select! {
                            _ = &mut conn => break,
                            _ = tokio::time::sleep(recheck) => {}
                        }
                    }
                }
                // The connection is gone or unusable: whatever we held went with it.
                leader.send_if_modified(|l| std::mem::replace(l, false));
                backend.send_replace(None);
                conn.abort();
            }
        }
        tokio::time::sleep(recheck).await;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testdb::{wait_until, TestDb};
    use super::*;

    const RECHECK: Duration = Duration::from_millis(20);

    /// Waits until each elector has done at least `n` more checks.
    async fn settle(electors: &[&Elector], n: u64) {
        let start: Vec<u64> = electors.iter().map(|e| e.checks()).collect();
        wait_until("every elector has re-checked", || {
            let done = electors
                .iter()
                .zip(&start)
                .all(|(e, s)| e.checks() >= s + n);
            async move { done }
        })
        .await;
    }

    #[tokio::test]
    async fn exactly_one_of_two_electors_leads() {
        let Some(db) = TestDb::create("lead").await else {
            return;
        };
        let a = Elector::spawn(db.pg(1), LEADER_LOCK, RECHECK);
        let b = Elector::spawn(db.pg(1), LEADER_LOCK, RECHECK);
        settle(&[&a, &b], 3).await;
        assert!(
            a.is_leader() ^ b.is_leader(),
            "exactly one leader: a={} b={}",
            a.is_leader(),
            b.is_leader()
        );
        // And PostgreSQL agrees on which.
        let leader = if a.is_leader() { &a } else { &b };
        let client = db.pg(1).client().await.expect("client");
        let holders: Vec<i32> = client
            .query(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
                   AND database = (SELECT oid FROM pg_database
                                    WHERE datname = current_database())
                   AND ((classid::bigint << 32) | objid::bigint) = $1",
                &[&LEADER_LOCK],
            )
            .await
            .expect("pg_locks")
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(holders, vec![leader.backend_pid().expect("connected")]);
    }

    #[tokio::test]
    async fn when_the_leaders_connection_is_killed_the_other_takes_over() {
        let Some(db) = TestDb::create("takeover").await else {
            return;
        };
        let a = Elector::spawn(db.pg(1), LEADER_LOCK, RECHECK);
        let b = Elector::spawn(db.pg(1), LEADER_LOCK, RECHECK);
        settle(&[&a, &b], 3).await;
        let (old, new) = if a.is_leader() { (&a, &b) } else { (&b, &a) };
        assert!(old.is_leader() && !new.is_leader());
        let pid = old.backend_pid().expect("connected");

        let admin = db.pg(1).client().await.expect("client");
        let killed: bool = admin
            .query_one("SELECT pg_terminate_backend($1)", &[&pid])
            .await
            .expect("terminate")
            .get(0);
        assert!(killed);

        wait_until("the other elector leads", || {
            let ok = new.is_leader();
            async move { ok }
        })
        .await;
        // The old leader reconnects as a follower: still exactly one leader.
        wait_until("the old leader is back on a new connection", || {
            let back = old.backend_pid().is_some_and(|p| p != pid);
            async move { back }
        })
        .await;
        settle(&[old, new], 3).await;
        assert!(
            new.is_leader() && !old.is_leader(),
            "the new leader keeps it"
        );
    }
}
