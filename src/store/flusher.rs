//! Group commit. sled acknowledges writes before they reach the disk, so crier must make them
//! durable before it answers. One sync per request would cap throughput at the disk's sync rate,
//! and concurrent `flush_async` calls deadlock in sled 0.34 (sled #1308). So a single task owns
//! syncing: writers enqueue a waiter after their write; the task takes every waiter queued so far,
//! runs one blocking `flush()` and one `fdatasync` of sled's log file, and wakes them all. Every
//! write that completed before a waiter was queued is on disk when that waiter wakes.
//!
//! Why the extra `fdatasync`: on Linux, sled 0.34 writes its log with `sync_file_range`, which
//! neither flushes the drive's volatile write cache nor persists file metadata (spacejam/sled#1452),
//! so without it an acknowledged write could be lost on power failure.
//!
//! Each commit also advances the high-water mark (see [`super::mark`]). A failed commit marks the
//! store broken (see [`super::health`]) before its writers hear of it, and ends this task: sled
//! refuses every write after a failed one, so the store re-opens the database and a new flusher.

use super::health::Health;
use super::mark::{Mark, COMMIT_KEY};
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

type Waiter = oneshot::Sender<Result<(), String>>;

/// Handle to the flusher task; cheap to clone.
#[derive(Clone, Debug)]
pub struct Flusher {
    tx: mpsc::UnboundedSender<Waiter>,
    stats: Arc<Counters>,
    /// Closed (its sender dropped) once the task has ended and dropped its database handle.
    ended: watch::Receiver<()>,
}

#[derive(Debug, Default)]
struct Counters {
    syncs: AtomicU64,
    waiters: AtomicU64,
}

/// How well group commit is working: `waiters / syncs` writes share each disk sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushStats {
    /// Completed group commits (one `flush()` + one `fdatasync` each).
    pub syncs: u64,
    /// Writes acknowledged by those commits.
    pub waiters: u64,
}

/// The flusher could not make writes durable.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    #[error(
        "could not write to disk: {0}; check free space and permissions of the data directory"
    )]
    Io(String),
    #[error("the store's flusher task has stopped; restart crier")]
    Gone,
}

impl Flusher {
    /// Spawns the flusher task on the current tokio runtime for the sled database in `dir`
    /// (its log is `<dir>/db`), whose last commit number is `commit` and mark is `mark`.
    pub(crate) fn spawn(
        db: sled::Db,
        dir: &Path,
        commit: u64,
        mark: Mark,
        health: Arc<Health>,
    ) -> Result<Self, sled::Error> {
        let file = File::open(dir.join("db"))?;
        let meta = db.open_tree("meta")?;
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Counters::default());
        let stats_task = stats.clone();
        let task = Task {
            db,
            meta,
            file,
            commit,
            mark,
        };
        let (ended_tx, ended) = watch::channel(());
        tokio::spawn(async move {
            run(task, rx, stats_task, health).await;
            // `run` has returned, so the task's database handle is dropped; then say so.
            drop(ended_tx);
        });
        Ok(Flusher { tx, stats, ended })
    }

    /// Counters since start-up.
    pub fn stats(&self) -> FlushStats {
        FlushStats {
            syncs: self.stats.syncs.load(Ordering::Relaxed),
            waiters: self.stats.waiters.load(Ordering::Relaxed),
        }
    }

    /// Resolves once the task has ended (every handle to it dropped, or a failed flush) and has
    /// dropped its handle on the database.
    pub fn ended(&self) -> impl std::future::Future<Output = ()> {
        let mut ended = self.ended.clone();
        async move { while ended.changed().await.is_ok() {} }
    }

    /// Resolves once every write that completed before this call is on disk.
    pub async fn durable(&self) -> Result<(), FlushError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(tx).map_err(|_| FlushError::Gone)?;
        rx.await
            .map_err(|_| FlushError::Gone)?
            .map_err(FlushError::Io)
    }
}

/// What one group commit needs; moved into the blocking section and back.
struct Task {
    db: sled::Db,
    meta: sled::Tree,
    file: File,
    /// The last commit number written to sled.
    commit: u64,
    mark: Mark,
}

impl Task {
    /// One group commit: next commit number, sled flush, fdatasync of the log, then the mark.
    fn commit(&mut self) -> Result<(), String> {
        let n = self.commit + 1;
        self.meta
            .insert(COMMIT_KEY, &n.to_be_bytes())
            .map_err(|e| e.to_string())?;
        self.commit = n;
        self.db.flush().map_err(|e| e.to_string())?;
        self.file.sync_data().map_err(|e| e.to_string())?;
        self.mark
            .write(n)
            .map_err(|e| format!("cannot write the high-water mark: {e}"))
    }
}

async fn run(
    task: Task,
    mut rx: mpsc::UnboundedReceiver<Waiter>,
    stats: Arc<Counters>,
    health: Arc<Health>,
) {
    let mut task = Some(task);
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let Some(mut t) = task.take() else { break };
        let synced = tokio::task::spawn_blocking(move || {
            let r = t.commit();
            (t, r)
        })
        .await;
        let result = match synced {
            Ok((t, r)) => {
                task = Some(t);
                r
            }
            Err(e) => Err(format!("flush task failed: {e}")),
        };
        match &result {
            Ok(()) => {
                stats.syncs.fetch_add(1, Ordering::Relaxed);
                stats
                    .waiters
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                // Everything queued so far shares the failure: none of it is known to be on disk.
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                tracing::error!(error = %e, writes = batch.len(), "flush failed; the store refuses reads and writes until it has re-opened its data from disk");
                health.fail(e, batch.len());
            }
        }
        for w in batch.drain(..) {
            // A waiter that gave up (client disconnected) is not an error.
            let _ = w.send(result.clone());
        }
        if result.is_err() {
            // sled refuses every write after a failed one; the store re-opens the database.
            return;
        }
    }
}
