//! Backups: every tree of the store at one instant, in one checksummed file, and the restore
//! that turns such a file back into a data directory.
//!
//! **Consistency.** A backup must be a state the store was actually in, not a mix of before and
//! after a change: an incident whose `update_count` names an update the file lacks, an alert
//! group pointing at an incident it lacks, a delivery without its due entry. sled offers no
//! snapshot across trees, so the store has a write pause ([`SledStore::writing_async`]): every write
//! section takes it shared (for microseconds; an expansion batch for its tens of milliseconds)
//! and the backup takes it exclusively while it iterates, so the file holds exactly the writes
//! that completed before it began. Reads never wait, and writers wait without parking a
//! runtime thread. After the iteration the backup waits for a
//! group commit, so everything in the file was on disk before the file is called complete
//! (a store that cannot flush fails the backup instead).
//!
//! **Format** (version 1), all integers big-endian:
//!
//! ```text
//! "CRIERBAK"  format u32  schema u32  created (ms since 1970, i64)
//! 'T' name_len u32 name                       a tree; its records follow
//! 'R' key_len u32 key value_len u32 value     a record, keys ascending within the tree
//! 'E' trees u64 records u64                   the end
//! SHA-256 of every byte before it (32 bytes)
//! ```
//!
//! Every tree is written, `meta` included (its commit number becomes the restored store's
//! high-water mark). Reading checks the whole structure and the checksum; a restore reads the
//! file completely once before it writes anything, and again while writing.

use super::port::Backups;
use super::{mark, SledStore, StoreError, SCHEMA_VERSION};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// The first bytes of every backup.
pub const MAGIC: [u8; 8] = *b"CRIERBAK";
/// The format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The usual file name extension.
pub const EXTENSION: &str = "crb";

const TAG_TREE: u8 = b'T';
const TAG_RECORD: u8 = b'R';
const TAG_END: u8 = b'E';
const HEADER_LEN: u64 = 8 + 4 + 4 + 8;
const TRAILER_LEN: u64 = 32;
/// Records written between sled flushes when restoring.
const RESTORE_FLUSH_EVERY: usize = 10_000;

/// Why a backup or a restore failed. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot {what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{} is not a usable crier backup: {why}; nothing was written — use another backup file", .path.display())]
    Invalid { path: PathBuf, why: String },
    #[error("{} was written by a newer crier ({what} {found}; this build knows {known}); restore it with that version or a newer one", .path.display())]
    Newer {
        path: PathBuf,
        what: &'static str,
        found: u32,
        known: u32,
    },
    #[error("{0}")]
    Target(String),
    /// The open backend has no backup in crier's format (PostgreSQL: the database's own tools
    /// back it up, see docs/POSTGRES.md); the message says what to use instead.
    #[error("{0}")]
    Unsupported(String),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> BackupError + 'a {
    move |source| BackupError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// What a backup holds, as written or as verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// When the snapshot was taken.
    pub created: DateTime<Utc>,
    /// The store layout version it was taken from.
    pub schema: u32,
    pub trees: u64,
    pub records: u64,
    /// The file's size.
    pub bytes: u64,
    /// The checksum in its trailer (hex).
    pub sha256: String,
}

/// Counts the bytes written and hashes them.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Wakes the writers waiting for a backup when dropped.
struct Resume<'a>(&'a tokio::sync::Notify);

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        self.0.notify_waiters();
    }
}

fn len32(n: usize) -> io::Result<[u8; 4]> {
    u32::try_from(n)
        .map(u32::to_be_bytes)
        .map_err(|_| io::Error::other("a record is larger than 4 GiB"))
}

impl SledStore {
    /// The write pause, shared: every write section of the store holds it, a backup holds it
    /// exclusively while it iterates (see the module docs). Never held across an await (the
    /// guard is not `Send`), and never taken twice by one thread: a waiting backup blocks new
    /// readers. This one blocks its thread while a backup runs: only for code already off the
    /// async runtime (an expansion batch); async code uses [`SledStore::writing_async`].
    pub(crate) fn writing(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        // The lock guards no data, so a panic elsewhere while holding it leaves nothing
        // half-done: a poisoned lock is used as is.
        self.inner
            .pause
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The write pause, shared, without blocking: `None` while a backup holds or waits for it.
    pub(crate) fn try_writing(&self) -> Option<std::sync::RwLockReadGuard<'_, ()>> {
        match self.inner.pause.try_read() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// The write pause, shared, waiting for a running backup asynchronously: a runtime thread
    /// is never parked behind a backup, so reads and probes (`/healthz`) go on while it runs.
    pub(crate) async fn writing_async(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        loop {
            // Registered before trying, so a backup ending in between is not missed.
            let resumed = self.inner.resumed.notified();
            let mut resumed = std::pin::pin!(resumed);
            resumed.as_mut().enable();
            if let Some(g) = self.try_writing() {
                return g;
            }
            resumed.await;
        }
    }

    /// Writes a consistent snapshot of every tree to `out` (see the module docs for the format).
    /// Blocking: writers wait while it iterates, so call it off the async runtime, and then
    /// [`SledStore::durable`] before calling the backup complete ([`SledStore::backup_to_file`] does both).
    pub fn write_backup(&self, out: impl Write) -> Result<Summary, BackupError> {
        let t = self.t()?;
        // Milliseconds, as the header stores it.
        let now = self.clock().now();
        let created = DateTime::<Utc>::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        let mut w = Hashing {
            inner: out,
            hasher: Sha256::new(),
            bytes: 0,
        };
        let fail = |e: io::Error| BackupError::Io {
            what: "write the backup to",
            path: PathBuf::from("its file"),
            source: e,
        };
        w.write_all(&MAGIC).map_err(fail)?;
        w.write_all(&FORMAT_VERSION.to_be_bytes()).map_err(fail)?;
        w.write_all(&SCHEMA_VERSION.to_be_bytes()).map_err(fail)?;
        w.write_all(&created.timestamp_millis().to_be_bytes())
            .map_err(fail)?;
        let (mut trees, mut records) = (0u64, 0u64);
        let paused_at = std::time::Instant::now();
        {
            // Declared first, so dropped last: writers waiting asynchronously are woken once the
            // pause has ended, on every path out of this block (errors included).
            let _resume = Resume(&self.inner.resumed);
            let _paused = self
                .inner
                .pause
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut names = t.db.tree_names();
            names.sort();
            for name in &names {
                w.write_all(&[TAG_TREE]).map_err(fail)?;
                w.write_all(&len32(name.len()).map_err(fail)?)
                    .map_err(fail)?;
                w.write_all(name).map_err(fail)?;
                trees += 1;
                for kv in t.db.open_tree(name).map_err(StoreError::from)?.iter() {
                    let (k, v) = kv.map_err(StoreError::from)?;
                    w.write_all(&[TAG_RECORD]).map_err(fail)?;
                    w.write_all(&len32(k.len()).map_err(fail)?).map_err(fail)?;
                    w.write_all(&k).map_err(fail)?;
                    w.write_all(&len32(v.len()).map_err(fail)?).map_err(fail)?;
                    w.write_all(&v).map_err(fail)?;
                    records += 1;
                }
            }
        }
        tracing::info!(
            records,
            paused_ms = paused_at.elapsed().as_millis() as u64,
            "store snapshot read (writes waited while it was read)"
        );
        w.write_all(&[TAG_END]).map_err(fail)?;
        w.write_all(&trees.to_be_bytes()).map_err(fail)?;
        w.write_all(&records.to_be_bytes()).map_err(fail)?;
        let digest = w.hasher.finalize_reset();
        w.inner.write_all(&digest).map_err(fail)?;
        w.inner.flush().map_err(fail)?;
        Ok(Summary {
            created,
            schema: SCHEMA_VERSION,
            trees,
            records,
            bytes: w.bytes + TRAILER_LEN,
            sha256: hex::encode(digest),
        })
    }
}

impl Backups for SledStore {
    /// Writes a backup into `file` (synced), then waits until everything in it is on disk in
    /// the store. Returns the file, positioned at its end.
    async fn backup_to_file(&self, file: File) -> Result<(File, Summary), BackupError> {
        let store = self.clone();
        let (file, summary) = tokio::task::spawn_blocking(move || {
            let mut w = BufWriter::with_capacity(1 << 20, file);
            let summary = store.write_backup(&mut w)?;
            let file = w.into_inner().map_err(|e| BackupError::Io {
                what: "write the backup to",
                path: PathBuf::from("its file"),
                source: e.into_error(),
            })?;
            file.sync_all().map_err(|e| BackupError::Io {
                what: "sync the backup to",
                path: PathBuf::from("its file"),
                source: e,
            })?;
            Ok::<_, BackupError>((file, summary))
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("the backup task failed: {e}")))??;
        // Everything the snapshot holds was written before it began, so this commit covers it.
        self.durable().await?;
        Ok((file, summary))
    }

    /// Writes a backup to `path`: into a temporary file next to it, synced, then renamed, so
    /// `path` is either absent or a complete backup.
    async fn backup_to_path(&self, path: &Path) -> Result<Summary, BackupError> {
        let tmp = temp_path(path);
        let file = create_private(&tmp).map_err(io_err("create", &tmp))?;
        let result = async {
            let (_, summary) = self.backup_to_file(file).await?;
            std::fs::rename(&tmp, path).map_err(io_err("rename the backup to", path))?;
            sync_parent(path).map_err(io_err("sync the directory of", path))?;
            Ok(summary)
        }
        .await;
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// `<dir>/.<name>.tmp`: where a backup is written before it is renamed to `path`.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".into());
    path.with_file_name(format!(".{name}.tmp"))
}

/// Creates `path` exclusively, readable by its owner only (a backup holds subscribers' addresses).
pub fn create_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Syncs the directory holding `path`, so a rename in it survives a power loss.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

/// One element of a backup, as [`read`] meets it.
pub enum Item<'a> {
    /// A tree begins; its records follow.
    Tree(&'a [u8]),
    Record(&'a [u8], &'a [u8]),
}

/// Reads a backup of `len` bytes from `r`, checking its whole structure and its checksum, and
/// hands every tree and record to `visit` in order. `path` names the file in errors. The
/// checksum is only known at the end: a caller that writes what it is handed must be able to
/// throw it away (restore writes into a staging directory).
pub fn read(
    r: impl Read,
    len: u64,
    path: &Path,
    mut visit: impl FnMut(Item<'_>) -> Result<(), BackupError>,
) -> Result<Summary, BackupError> {
    let bad = |why: &str| BackupError::Invalid {
        path: path.to_owned(),
        why: why.to_owned(),
    };
    let mut r = Reading {
        inner: r,
        hasher: Sha256::new(),
        consumed: 0,
        len,
        path,
    };
    if len < HEADER_LEN + 1 + 16 + TRAILER_LEN {
        let mut head = Vec::new();
        let _ = r.inner.by_ref().take(8).read_to_end(&mut head);
        if head.is_empty() || head[..] != MAGIC[..head.len()] {
            return Err(bad(
                "it is not a crier backup (it does not begin with CRIERBAK)",
            ));
        }
        return Err(bad("it ends early (the file is truncated)"));
    }
    let magic: [u8; 8] = r.array()?;
    if magic != MAGIC {
        return Err(bad(
            "it is not a crier backup (it does not begin with CRIERBAK)",
        ));
    }
    let format = u32::from_be_bytes(r.array()?);
    if format > FORMAT_VERSION {
        return Err(BackupError::Newer {
            path: path.to_owned(),
            what: "backup format",
            found: format,
            known: FORMAT_VERSION,
        });
    }
    if format == 0 {
        return Err(bad("its format version is 0 (the header is damaged)"));
    }
    let schema = u32::from_be_bytes(r.array()?);
    if schema > SCHEMA_VERSION {
        return Err(BackupError::Newer {
            path: path.to_owned(),
            what: "store schema",
            found: schema,
            known: SCHEMA_VERSION,
        });
    }
    let created_ms = i64::from_be_bytes(r.array()?);
    let created = DateTime::<Utc>::from_timestamp_millis(created_ms)
        .ok_or_else(|| bad("its creation time is out of range (the header is damaged)"))?;
    let mut names: Vec<Vec<u8>> = Vec::new();
    let mut last_key: Option<Vec<u8>> = None;
    let mut records = 0u64;
    loop {
        let [tag] = r.array()?;
        match tag {
            TAG_TREE => {
                let name = r.chunk()?;
                if names.contains(&name) {
                    return Err(bad("a tree appears twice (the file is damaged)"));
                }
                visit(Item::Tree(&name))?;
                names.push(name);
                last_key = None;
            }
            TAG_RECORD => {
                if names.is_empty() {
                    return Err(bad("a record comes before any tree (the file is damaged)"));
                }
                let key = r.chunk()?;
                let value = r.chunk()?;
                if last_key.as_ref().is_some_and(|k| *k >= key) {
                    return Err(bad("its keys are out of order (the file is damaged)"));
                }
                visit(Item::Record(&key, &value))?;
                last_key = Some(key);
                records += 1;
            }
            TAG_END => {
                let trees = u64::from_be_bytes(r.array()?);
                let counted = u64::from_be_bytes(r.array()?);
                if trees != names.len() as u64 || counted != records {
                    return Err(bad(
                        "its record counts do not match its contents (the file is damaged)",
                    ));
                }
                break;
            }
            _ => return Err(bad("it holds an unknown element (the file is damaged)")),
        }
    }
    let digest = r.hasher.finalize_reset();
    let mut trailer = [0u8; 32];
    r.inner
        .read_exact(&mut trailer)
        .map_err(|_| bad("it ends early (the file is truncated)"))?;
    if trailer[..] != digest[..] {
        return Err(bad("its checksum does not match (the file is damaged)"));
    }
    let mut extra = [0u8; 1];
    if r.inner.read(&mut extra).map_err(io_err("read", path))? != 0 {
        return Err(bad(
            "there are bytes after its checksum (the file is damaged)",
        ));
    }
    Ok(Summary {
        created,
        schema,
        trees: names.len() as u64,
        records,
        bytes: len,
        sha256: hex::encode(digest),
    })
}

/// Reads and hashes the part of a backup before its trailer, refusing lengths that reach past it.
struct Reading<'p, R> {
    inner: R,
    hasher: Sha256,
    consumed: u64,
    len: u64,
    path: &'p Path,
}

impl<R: Read> Reading<'_, R> {
    fn truncated(&self) -> BackupError {
        BackupError::Invalid {
            path: self.path.to_owned(),
            why: "it ends early (the file is truncated)".into(),
        }
    }

    /// Bytes left before the trailer.
    fn left(&self) -> u64 {
        self.len.saturating_sub(TRAILER_LEN + self.consumed)
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), BackupError> {
        if (buf.len() as u64) > self.left() {
            return Err(self.truncated());
        }
        self.inner.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => self.truncated(),
            _ => BackupError::Io {
                what: "read",
                path: self.path.to_owned(),
                source: e,
            },
        })?;
        self.hasher.update(&*buf);
        self.consumed += buf.len() as u64;
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BackupError> {
        let mut b = [0u8; N];
        self.fill(&mut b)?;
        Ok(b)
    }

    /// A length-prefixed byte string; its length is checked against what is left of the file
    /// before anything is allocated.
    fn chunk(&mut self) -> Result<Vec<u8>, BackupError> {
        let n = u64::from(u32::from_be_bytes(self.array()?));
        if n > self.left() {
            return Err(self.truncated());
        }
        let mut b = vec![0u8; n as usize];
        self.fill(&mut b)?;
        Ok(b)
    }
}

/// Opens the backup at `path` and reads it through `visit` (see [`read`]).
fn read_path(
    path: &Path,
    visit: impl FnMut(Item<'_>) -> Result<(), BackupError>,
) -> Result<Summary, BackupError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let len = file.metadata().map_err(io_err("read", path))?.len();
    read(BufReader::with_capacity(1 << 20, file), len, path, visit)
}

/// Checks a backup file completely (structure and checksum) without writing anything.
pub fn verify(path: &Path) -> Result<Summary, BackupError> {
    read_path(path, |_| Ok(()))
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub summary: Summary,
    /// The store directory written (`<data>/db`).
    pub store_dir: PathBuf,
    /// Where the store that was there before went (with `--force`).
    pub replaced: Option<PathBuf>,
}

/// Whether the sled database in `store_dir` is open in some process (sled holds an exclusive
/// `flock` on its `db` file while open).
fn in_use(store_dir: &Path) -> bool {
    match File::open(store_dir.join("db")) {
        Ok(f) => match f.try_lock() {
            Ok(()) => {
                let _ = f.unlock();
                false
            }
            Err(std::fs::TryLockError::WouldBlock) => true,
            Err(std::fs::TryLockError::Error(_)) => false,
        },
        Err(_) => false,
    }
}

/// Restores the backup at `file` into the data directory `data` (its store goes to
/// `<data>/db`). Refuses a non-empty `data` unless `force`, and then a store in use; reads the
/// whole backup and checks its checksum before writing anything; writes the new store into a
/// staging directory beside the target, opens it as `crier serve` would (schema, high-water
/// mark, crash repair), and only then moves it into place. With `force`, the store that was
/// there is kept as `<data>/db.replaced-<time>`; the rest of `data` (admin token, outbox) stays.
pub fn restore(
    file: &Path,
    data: &Path,
    force: bool,
    now: DateTime<Utc>,
) -> Result<Restored, BackupError> {
    let store_dir = data.join("db");
    let entries: Vec<String> = match std::fs::read_dir(data) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err("read the directory", data)(e)),
    };
    if !entries.is_empty() && !force {
        let mut shown = entries.clone();
        shown.sort();
        shown.truncate(5);
        return Err(BackupError::Target(format!(
            "{} is not empty (it holds {}); restore into a new or empty directory, or pass --force to replace the store in it (the current one is kept beside it as db.replaced-<time>); nothing was written",
            data.display(),
            shown.join(", ")
        )));
    }
    if in_use(&store_dir) {
        return Err(BackupError::Target(format!(
            "the store in {} is open in a running crier; stop it first, then restore; nothing was written",
            store_dir.display()
        )));
    }
    // The whole file, before anything is written.
    let summary = verify(file)?;
    super::private_dir(data)?;
    let staging = data.join(format!(".db.restoring-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io_err("remove", &staging))?;
    }
    let written = write_store(file, &staging, &summary).and_then(|()| check_opens(&staging));
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let replaced = if store_dir.exists() {
        // A restore runs offline (no server): the CLI passes the wall clock's `now`, which
        // names a directory on disk beside the files' own mtimes.
        let aside = data.join(format!("db.replaced-{}", now.format("%Y%m%dT%H%M%S%.3fZ")));
        std::fs::rename(&store_dir, &aside).map_err(io_err("move aside", &store_dir))?;
        Some(aside)
    } else {
        None
    };
    std::fs::rename(&staging, &store_dir).map_err(io_err("move into place", &store_dir))?;
    sync_parent(&store_dir).map_err(io_err("sync", data))?;
    Ok(Restored {
        summary,
        store_dir,
        replaced,
    })
}

/// Writes every record of the backup into a new sled database in `dir`, with a high-water mark
/// matching its commit number. Reads the file again, so a file changed since it was verified
/// is refused by its checksum (the staging directory is then removed).
fn write_store(file: &Path, dir: &Path, verified: &Summary) -> Result<(), BackupError> {
    let db = sled::Config::new()
        .path(dir)
        .mode(sled::Mode::HighThroughput)
        .cache_capacity(super::STORE_CACHE_BYTES)
        .flush_every_ms(None)
        .open()
        .map_err(StoreError::from)?;
    let mut tree: Option<sled::Tree> = None;
    let mut written = 0usize;
    let mut commit: u64 = 0;
    let mut in_meta = false;
    let summary = read_path(file, |item| {
        match item {
            Item::Tree(name) => {
                in_meta = name == b"meta";
                tree = Some(db.open_tree(name).map_err(StoreError::from)?);
            }
            Item::Record(k, v) => {
                if in_meta && k == mark::COMMIT_KEY.as_bytes() {
                    commit = <[u8; 8]>::try_from(v).map(u64::from_be_bytes).unwrap_or(0);
                }
                // `read` hands out no record before its tree.
                if let Some(t) = &tree {
                    t.insert(k, v).map_err(StoreError::from)?;
                }
                written += 1;
                // One record at a time with a flush every so often: sled 0.34 held 8 GiB for a
                // 3,000,000-record restore written in batches of 10,000, and 190 MiB like this.
                if written.is_multiple_of(RESTORE_FLUSH_EVERY) {
                    db.flush().map_err(StoreError::from)?;
                }
            }
        }
        Ok(())
    })?;
    drop(tree);
    if summary.sha256 != verified.sha256 {
        return Err(BackupError::Invalid {
            path: file.to_owned(),
            why: "it changed while it was being restored".into(),
        });
    }
    db.flush().map_err(StoreError::from)?;
    let log = dir.join("db");
    File::open(&log)
        .and_then(|f| f.sync_all())
        .map_err(io_err("sync", &log))?;
    drop(db);
    mark::Mark::create(dir, commit).map_err(io_err("write the high-water mark in", dir))?;
    Ok(())
}

/// Opens the restored store as `crier serve` would, on a runtime of its own, and closes it.
fn check_opens(dir: &Path) -> Result<(), BackupError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_err("start a runtime to check", dir))?;
    let opened = rt.block_on(async {
        // sled's IO threads may hold the database's file lock for a moment after the writer
        // dropped its handle.
        super::wait_released(dir).await?;
        let store = SledStore::open(dir)?;
        store.durable().await?;
        // Released when this returns: whoever moves the directory into place next opens it.
        store.close().await
    });
    drop(rt);
    opened.map_err(|e| BackupError::Invalid {
        path: dir.to_owned(),
        why: format!("the restored store does not open ({e})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::port::{Holds, Incidents};
    use crate::store::tests::{new_incident, new_update};
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    async fn filled() -> (tempfile::TempDir, SledStore) {
        filled_with(20).await
    }

    async fn filled_with(n: usize) -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        for i in 0..n {
            store
                .create_incident(new_incident(&format!("incident {i}")), Utc::now())
                .await
                .unwrap();
        }
        (dir, store)
    }

    fn backup_bytes(store: &SledStore) -> (Vec<u8>, Summary) {
        let mut out = Vec::new();
        let s = store.write_backup(&mut out).unwrap();
        (out, s)
    }

    /// (tree, key, value)
    type Rec = (Vec<u8>, Vec<u8>, Vec<u8>);

    fn read_bytes(b: &[u8]) -> Result<(Summary, Vec<Rec>), BackupError> {
        let mut tree = Vec::new();
        let mut recs = Vec::new();
        let s = read(b, b.len() as u64, Path::new("test.crb"), |i| {
            match i {
                Item::Tree(n) => tree = n.to_vec(),
                Item::Record(k, v) => recs.push((tree.clone(), k.to_vec(), v.to_vec())),
            }
            Ok(())
        })?;
        Ok((s, recs))
    }

    #[tokio::test]
    async fn a_backup_round_trips_every_record() {
        let (_dir, store) = filled().await;
        let (bytes, written) = backup_bytes(&store);
        assert_eq!(written.bytes, bytes.len() as u64);
        let (read_back, recs) = read_bytes(&bytes).unwrap();
        assert_eq!(read_back, written);
        let t = store.t().unwrap();
        let mut expected = Vec::new();
        let mut names = t.db.tree_names();
        names.sort();
        for n in names {
            for kv in t.db.open_tree(&n).unwrap().iter() {
                let (k, v) = kv.unwrap();
                expected.push((n.to_vec(), k.to_vec(), v.to_vec()));
            }
        }
        assert_eq!(recs, expected);
        assert!(recs.iter().filter(|r| r.0 == b"incidents").count() == 20);
    }

    /// A backup's creation time is the store's clock, not the system's: a store opened on a
    /// clock anchored in 2001 (tokio's time paused, so it does not move) stamps its backups in
    /// 2001, in the header as in the summary.
    #[tokio::test(start_paused = true)]
    async fn a_backup_is_stamped_with_the_stores_clock() {
        let dir = tempfile::tempdir().unwrap();
        let start = DateTime::parse_from_rfc3339("2001-02-03T04:05:06.789Z")
            .unwrap()
            .to_utc();
        let clock = crate::clock::Clock::starting_at(start);
        let store = SledStore::open_with_clock(&dir.path().join("db"), clock).unwrap();
        store
            .create_incident(new_incident("then"), clock.now())
            .await
            .unwrap();
        let before = clock.now();
        let (bytes, written) = backup_bytes(&store);
        let after = clock.now();
        assert!(
            before <= written.created && written.created <= after,
            "created {} is not the store's clock ({before} .. {after})",
            written.created
        );
        assert_eq!(read_bytes(&bytes).unwrap().0.created, written.created);
        let file = dir.path().join("b.crb");
        let summary = store.backup_to_path(&file).await.unwrap();
        assert!(summary.created >= before && summary.created <= clock.now());
        assert_eq!(verify(&file).unwrap().created, summary.created);
    }

    #[tokio::test]
    async fn every_flipped_byte_and_every_truncation_is_refused() {
        let (_dir, store) = filled_with(2).await;
        let (bytes, _) = backup_bytes(&store);
        // Every position (the file is small): a flip anywhere, header to trailer, is refused.
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            assert!(read_bytes(&b).is_err(), "a flipped bit at {i} was accepted");
        }
        for cut in [
            0,
            1,
            7,
            8,
            30,
            bytes.len() / 2,
            bytes.len() - 33,
            bytes.len() - 1,
        ] {
            let e = read_bytes(&bytes[..cut]).unwrap_err().to_string();
            assert!(
                e.contains("truncated") || e.contains("not a crier backup"),
                "cut at {cut}: {e}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(read_bytes(&longer).is_err());
        let e = read_bytes(b"PK\x03\x04 something else entirely, long enough to be read")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a crier backup"), "{e}");
    }

    #[tokio::test]
    async fn a_restored_store_opens_with_the_same_records() {
        let (dir, store) = filled().await;
        let file = dir.path().join("b.crb");
        let summary = store.backup_to_path(&file).await.unwrap();
        assert_eq!(verify(&file).unwrap(), summary);
        let before = store.checksum().unwrap();
        let target = tempfile::tempdir().unwrap();
        let data = target.path().join("data");
        let restored = tokio::task::spawn_blocking({
            let (file, data) = (file.clone(), data.clone());
            move || restore(&file, &data, false, Utc::now())
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(restored.summary, summary);
        assert!(
            mark::read(&data.join("db")).unwrap().is_some_and(|m| m > 0),
            "a restored store has its high-water mark"
        );
        let again = SledStore::open(&data.join("db")).unwrap();
        assert_eq!(again.checksum().unwrap(), before);
    }

    /// Incidents and updates in a backup must agree as they do in the store: updates 1..=n for
    /// an incident whose `update_count` is n, and no update without its incident. Appends
    /// write the update, then the incident, and creations the other way round, while a backup
    /// reads `incidents` before `updates`; without the write pause a backup taken between the
    /// two records of a change breaks this.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn backups_under_concurrent_writes_are_consistent_cuts() {
        let (_dir, store) = filled_with(8).await;
        let ids: Vec<ulid::Ulid> = store
            .incidents(&crate::store::IncidentFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut writers = Vec::new();
        for w in 0..4 {
            let (store, ids, stop, done) = (store.clone(), ids.clone(), stop.clone(), done.clone());
            writers.push(tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let id = ids[(w + n) % ids.len()];
                    store
                        .append_update(id, new_update("more"), Utc::now())
                        .await
                        .unwrap();
                    store
                        .create_incident(new_incident(&format!("w{w} {n}")), Utc::now())
                        .await
                        .unwrap();
                    n += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        // Backups until the writers have made 150 changes of each kind alongside them.
        let mut backups = Vec::new();
        while done.load(Ordering::Relaxed) < 150 {
            let s = store.clone();
            backups.push(
                tokio::task::spawn_blocking(move || {
                    let mut out = Vec::new();
                    s.write_backup(&mut out).unwrap();
                    out
                })
                .await
                .unwrap(),
            );
        }
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.await.unwrap();
        }
        for (n, b) in backups.iter().enumerate() {
            let (_, recs) = read_bytes(b).unwrap();
            let mut counts = BTreeMap::new();
            let mut updates: BTreeMap<Vec<u8>, BTreeSet<u32>> = BTreeMap::new();
            for (tree, k, v) in &recs {
                match tree.as_slice() {
                    b"incidents" => {
                        let i: crate::domain::Incident = crate::store::decode(v).unwrap();
                        counts.insert(k.clone(), i.update_count);
                    }
                    b"updates" => {
                        let seq = u32::from_be_bytes(k[16..20].try_into().unwrap());
                        updates.entry(k[..16].to_vec()).or_default().insert(seq);
                    }
                    _ => {}
                }
            }
            for (id, count) in &counts {
                let want: BTreeSet<u32> = (1..=*count).collect();
                assert_eq!(
                    updates.get(id),
                    Some(&want),
                    "backup {n}: an incident with {count} updates has a different timeline"
                );
            }
            for id in updates.keys() {
                assert!(
                    counts.contains_key(id),
                    "backup {n}: updates without their incident"
                );
            }
        }
    }

    /// While a backup holds the write pause, a writer waits without parking its runtime thread:
    /// on a single-threaded runtime, another task (a read, a probe) still runs. A writer that
    /// blocked its thread would stall it until the pause ended.
    #[tokio::test(flavor = "current_thread")]
    async fn a_writer_waiting_for_a_backup_does_not_block_its_runtime_thread() {
        let (_dir, store) = filled_with(1).await;
        let events = Arc::new(std::sync::Mutex::new(Vec::<&str>::new()));
        let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
        let (read_tx, read_rx) = std::sync::mpsc::channel::<()>();
        let holder = {
            let (store, events) = (store.clone(), events.clone());
            std::thread::spawn(move || {
                let resume = Resume(&store.inner.resumed);
                let paused = store.inner.pause.write().unwrap();
                held_tx.send(()).unwrap();
                // Until the read ran (a safety bound, not a timing assertion: the order of the
                // events is what is checked).
                let _ = read_rx.recv_timeout(std::time::Duration::from_secs(20));
                events.lock().unwrap().push("pause ended");
                drop(paused);
                drop(resume);
            })
        };
        held_rx.recv().unwrap();
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .put_hold(&crate::domain::Hold {
                        incident_id: ulid::Ulid::new(),
                        until: Utc::now(),
                        broadcast: vec![],
                    })
                    .await
                    .unwrap();
            })
        };
        let reader = {
            let (store, events) = (store.clone(), events.clone());
            tokio::spawn(async move {
                store.incidents(&Default::default()).await.unwrap();
                events.lock().unwrap().push("read");
                let _ = read_tx.send(());
            })
        };
        reader.await.unwrap();
        writer.await.unwrap();
        holder.join().unwrap();
        assert_eq!(*events.lock().unwrap(), vec!["read", "pause ended"]);
        assert_eq!(
            store.holds().await.unwrap().len(),
            1,
            "the write went through afterwards"
        );
    }
}
