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

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

type Waiter = oneshot::Sender<Result<(), String>>;

/// Handle to the flusher task; cheap to clone.
#[derive(Clone, Debug)]
pub struct Flusher {
    tx: mpsc::UnboundedSender<Waiter>,
    stats: Arc<Counters>,
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
    /// Spawns the flusher task on the current tokio runtime. `log_file` is sled's log (`<dir>/db`).
    pub fn spawn(db: sled::Db, log_file: PathBuf) -> Result<Self, sled::Error> {
        let file = Arc::new(File::open(&log_file)?);
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Counters::default());
        tokio::spawn(run(db, file, rx, stats.clone()));
        Ok(Flusher { tx, stats })
    }

    /// Counters since start-up.
    pub fn stats(&self) -> FlushStats {
        FlushStats {
            syncs: self.stats.syncs.load(Ordering::Relaxed),
            waiters: self.stats.waiters.load(Ordering::Relaxed),
        }
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

async fn run(
    db: sled::Db,
    file: Arc<File>,
    mut rx: mpsc::UnboundedReceiver<Waiter>,
    stats: Arc<Counters>,
) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let (db2, file2) = (db.clone(), file.clone());
        let synced = tokio::task::spawn_blocking(move || -> Result<(), String> {
            db2.flush().map_err(|e| e.to_string())?;
            file2.sync_data().map_err(|e| e.to_string())
        })
        .await;
        let result = match synced {
            Ok(r) => r,
            Err(e) => Err(format!("flush task failed: {e}")),
        };
        match &result {
            Ok(()) => {
                stats.syncs.fetch_add(1, Ordering::Relaxed);
                stats
                    .waiters
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Err(e) => tracing::error!(error = %e, "flush failed"),
        }
        for w in batch.drain(..) {
            // A waiter that gave up (client disconnected) is not an error.
            let _ = w.send(result.clone());
        }
    }
}
