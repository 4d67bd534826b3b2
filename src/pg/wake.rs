//! Waking idle nodes when deliveries arrive: LISTEN/NOTIFY, with polling as the fallback.
//!
//! Inserting into the outbox notifies `crier_outbox` (a trigger, migrations/0001_outbox.sql), and
//! so does a new open broadcast, one reopened, and a dead delivery requeued
//! (migrations/0007_wakeups.sql). A [`Wakeup`] listens on a connection of its own and turns each
//! notification into a wake-up of the waiting claimer (the dispatcher forwards them to its
//! expander and channel workers, `dispatch::forward_wakeups`). Notifications are only hints: one sent while the listener is disconnected
//! is lost, and a retry that comes due sends none, so the claimer also polls every `poll`, and
//! after a reconnection the listener wakes it once (work may have come meanwhile).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client};

use super::outbox::{self, Claim};
use super::{Pg, PgError};

/// The channel the outbox trigger notifies.
pub const CHANNEL: &str = "crier_outbox";

/// Why [`Wakeup::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    Notified,
    Polled,
}

/// A listener on [`CHANNEL`]. Dropping it ends the listener.
pub struct Wakeup {
    notify: Arc<Notify>,
    listening: watch::Receiver<Option<i32>>,
    task: JoinHandle<()>,
}

impl Drop for Wakeup {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Wakeup {
    /// Starts listening; after losing the connection, reconnects every `reconnect_after`.
    pub fn listen(pg: Pg, reconnect_after: Duration) -> Wakeup {
        let notify = Arc::new(Notify::new());
        let (tx, listening) = watch::channel(None);
        let task = tokio::spawn(run(pg, reconnect_after, notify.clone(), tx));
        Wakeup {
            notify,
            listening,
            task,
        }
    }

    /// The backend pid of the listening connection, while it listens.
    pub fn listening_pid(&self) -> Option<i32> {
        *self.listening.borrow()
    }

    /// Waits for the next notification (or the wake-up after a reconnection), however long. A
    /// notification that came while nobody waited is not lost: the next wait returns at once.
    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    /// Waits for a notification, or `poll` at most. A notification that came while nobody
    /// waited is not lost: the next wait returns at once.
    pub async fn wait(&self, poll: Duration) -> Woken {
        tokio::select! {
            _ = self.notify.notified() => Woken::Notified,
            _ = tokio::time::sleep(poll) => Woken::Polled,
        }
    }
}

async fn run(
    pg: Pg,
    reconnect_after: Duration,
    notify: Arc<Notify>,
    listening: watch::Sender<Option<i32>>,
) {
    let mut first = true;
    loop {
        match pg.connect_raw().await {
            Err(e) => tracing::warn!(error = %e, "outbox listener: cannot connect to PostgreSQL"),
            Ok((client, mut conn)) => {
                let (tx, mut rx) = mpsc::unbounded_channel();
                // Drives the connection, and hands its notifications over.
                let driver = tokio::spawn(async move {
                    let mut messages = futures_util::stream::poll_fn(|cx| conn.poll_message(cx));
                    while let Some(Ok(msg)) = messages.next().await {
                        if let AsyncMessage::Notification(_) = msg {
                            if tx.send(()).is_err() {
                                break;
                            }
                        }
                    }
                });
                if let Ok(pid) = start_listening(&client).await {
                    listening.send_replace(Some(pid));
                    if !first {
                        notify.notify_one();
                    }
                    first = false;
                    while rx.recv().await.is_some() {
                        notify.notify_one();
                    }
                }
                listening.send_replace(None);
                driver.abort();
            }
        }
        tokio::time::sleep(reconnect_after).await;
    }
}

async fn start_listening(client: &Client) -> Result<i32, PgError> {
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    Ok(client
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0))
}

/// Claims work for `node`, waiting while there is none: after each empty claim it waits for a
/// notification or `poll`, then claims again. `now` is read before each claim.
#[allow(clippy::too_many_arguments)]
pub async fn claim_next(
    client: &Client,
    wake: &Wakeup,
    node: &str,
    n: i64,
    lease: chrono::Duration,
    poll: Duration,
    mut now: impl FnMut() -> DateTime<Utc>,
) -> Result<Vec<Claim>, PgError> {
    loop {
        let got = outbox::claim(client, node, n, lease, now()).await?;
        if !got.is_empty() {
            return Ok(got);
        }
        wake.wait(poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::super::outbox::NewDelivery;
    use super::super::testdb::{wait_until, TestDb};
    use super::*;
    use chrono::TimeZone;

    const BOUND: Duration = Duration::from_secs(60);

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0)
            .single()
            .expect("valid")
    }

    fn one(due: DateTime<Utc>) -> Vec<NewDelivery> {
        vec![NewDelivery {
            id: "d1".into(),
            channel: "email".into(),
            payload: b"hello".to_vec(),
            due,
        }]
    }

    #[tokio::test]
    async fn a_notify_wakes_a_waiting_claimer() {
        let Some(db) = TestDb::create("notify").await else {
            return;
        };
        let pg = db.migrated(2).await;
        let wake = Arc::new(Wakeup::listen(pg.clone(), Duration::from_millis(20)));
        wait_until("the listener listens", || {
            let ok = wake.listening_pid().is_some();
            async move { ok }
        })
        .await;
        // A wait that only a notification can end (the poll is an hour).
        let waiter = {
            let wake = wake.clone();
            tokio::spawn(async move { wake.wait(Duration::from_secs(3600)).await })
        };
        let c = pg.client().await.expect("client");
        outbox::enqueue(&c, &one(t0())).await.expect("enqueue");
        let woken = tokio::time::timeout(BOUND, waiter)
            .await
            .expect("the insert's NOTIFY did not wake the waiting claimer within 60 s")
            .expect("join");
        assert_eq!(woken, Woken::Notified);
        let got = tokio::time::timeout(
            BOUND,
            claim_next(
                &c,
                &wake,
                "a",
                10,
                chrono::Duration::seconds(30),
                Duration::from_secs(3600),
                t0,
            ),
        )
        .await
        .expect("claim_next found nothing")
        .expect("claim");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, "d1");
    }

    #[tokio::test]
    async fn with_the_listener_disconnected_polling_still_finds_the_work() {
        let Some(db) = TestDb::create("poll").await else {
            return;
        };
        let pg = db.migrated(2).await;
        // Cut off, and not coming back for an hour.
        let wake = Wakeup::listen(pg.clone(), Duration::from_secs(3600));
        wait_until("the listener listens", || {
            let ok = wake.listening_pid().is_some();
            async move { ok }
        })
        .await;
        let pid = wake.listening_pid().expect("listening");
        let c = pg.client().await.expect("client");
        c.execute("SELECT pg_terminate_backend($1)", &[&pid])
            .await
            .expect("terminate");
        wait_until("the listener notices it is cut off", || {
            let gone = wake.listening_pid().is_none();
            async move { gone }
        })
        .await;

        // Due at t0: the first claim (at t0 - 1 s) finds nothing, and no notification will come
        // (the insert's went to nobody), so only polling finds it at the next claim (at t0).
        outbox::enqueue(&c, &one(t0())).await.expect("enqueue");
        let mut calls = 0;
        let clock = move || {
            calls += 1;
            if calls == 1 {
                t0() - chrono::Duration::seconds(1)
            } else {
                t0()
            }
        };
        let got = tokio::time::timeout(
            BOUND,
            claim_next(
                &c,
                &wake,
                "a",
                10,
                chrono::Duration::seconds(30),
                Duration::from_millis(20),
                clock,
            ),
        )
        .await
        .expect("polling did not find the due delivery within 60 s")
        .expect("claim");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, "d1");
    }
}
