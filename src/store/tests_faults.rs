//! The store under a failing disk and damaged files: a failed flush hides its writes and the
//! store recovers; a shortened or bit-flipped data directory is refused at start-up.

use super::tests::new_incident;
use super::*;
use crate::store::port::Incidents;
use std::time::Duration;

/// Opens the store in `path`, waiting for a previous handle's flusher to let go of sled's lock.
async fn reopen(path: &Path) -> Result<SledStore, StoreError> {
    for _ in 0..250 {
        match SledStore::open(path) {
            Err(StoreError::Locked(_)) => tokio::time::sleep(Duration::from_millis(20)).await,
            other => return other,
        }
    }
    SledStore::open(path)
}

/// Makes every later write to sled's log in `dir` fail with an I/O error, as a full disk does:
/// each descriptor this process holds on the log is replaced by a read-only one. Descriptors
/// opened later (the store's re-open) write again, as after space was freed.
fn fail_log_writes(dir: &Path) {
    use std::os::fd::AsRawFd;
    let log = dir.join("db").canonicalize().unwrap();
    let read_only = std::fs::File::open(&log).unwrap();
    let mut swapped = 0;
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let entry = entry.unwrap();
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if target == log && fd != read_only.as_raw_fd() {
            // SAFETY: dup2 onto a descriptor this process owns; it stays open (now read-only).
            assert!(unsafe { libc::dup2(read_only.as_raw_fd(), fd) } >= 0);
            swapped += 1;
        }
    }
    assert!(swapped > 0, "no descriptor on {}", log.display());
}

/// Waits (up to a generous minute) until the store serves again after a failure.
async fn until_recovered(store: &SledStore) {
    for _ in 0..600 {
        if store.broken().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the store did not recover: {:?}", store.broken());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_flush_hides_its_write_and_the_store_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("db")).unwrap();
    let now = Utc::now();
    let (kept, _) = store
        .create_incident(new_incident("acknowledged"), now)
        .await
        .unwrap();

    fail_log_writes(&dir.path().join("db"));
    let id = Ulid::new();
    let failed = store
        .create_incident_with_id(id, new_incident("answered with an error"), now)
        .await;
    assert!(matches!(failed, Err(StoreError::Broken(_))), "{failed:?}");

    // While broken, nothing is served: not the failed write, and no stale view either.
    assert!(matches!(
        store.incident(id).await,
        Err(StoreError::Broken(_))
    ));
    assert!(matches!(
        store.incident(kept.id).await,
        Err(StoreError::Broken(_))
    ));
    assert!(store.ready().await.is_err());
    let unsaved = store.unsaved().unwrap();
    assert!(unsaved.contains("1 write(s)"), "{unsaved}");

    // The recovery task re-opens the data from disk: the acknowledged write is there, the failed
    // one is gone, and new writes succeed.
    until_recovered(&store).await;
    assert!(store.incident(kept.id).await.is_ok());
    assert!(
        matches!(store.incident(id).await, Err(StoreError::NotFound { .. })),
        "a write answered with an error must never become visible"
    );
    let (later, _) = store
        .create_incident(new_incident("after recovery"), now)
        .await
        .unwrap();
    assert!(store.incident(later.id).await.is_ok());
    store.ready().await.unwrap();
}

/// Writes `n` incidents, each acknowledged, and closes the store.
async fn filled(path: &Path, n: usize) -> Vec<Ulid> {
    let store = SledStore::open(path).unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let (inc, _) = store
            .create_incident(new_incident(&format!("incident {i}")), Utc::now())
            .await
            .unwrap();
        ids.push(inc.id);
    }
    ids
}

fn expect_damaged(r: Result<SledStore, StoreError>) {
    match r {
        Err(e @ StoreError::Damaged { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("crier restore FILE --data"), "{msg}");
        }
        Err(other) => panic!("expected the damaged-store refusal, got: {other}"),
        Ok(_) => panic!("a damaged store was opened"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    filled(&path, 200).await;
    // Wait until the previous handle is gone (the lock is released) before damaging the files.
    drop(reopen(&path).await.unwrap());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = path.join("db");
    let len = std::fs::metadata(&log).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    expect_damaged(reopen(&path).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_bits_in_the_log_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    filled(&path, 200).await;
    drop(reopen(&path).await.unwrap());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = path.join("db");
    let mut raw = std::fs::read(&log).unwrap();
    let at = raw.len() / 3;
    for b in &mut raw[at..at + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&log, raw).unwrap();
    expect_damaged(reopen(&path).await);
}

/// sled opens an older copy of its files without complaint (here: files put back from before
/// the last writes, as a rolled-back snapshot or a partial copy would leave them); the
/// high-water mark notices that acknowledged commits are missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_copy_of_the_files_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    filled(&path, 20).await;
    drop(reopen(&path).await.unwrap());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let old = dir.path().join("old");
    copy_dir(&path, &old);
    filled_more(&path, 20).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Put the old sled files back, keeping the current mark.
    let mark = std::fs::read(mark::path(&path)).unwrap();
    std::fs::remove_dir_all(&path).unwrap();
    copy_dir(&old, &path);
    std::fs::write(mark::path(&path), mark).unwrap();
    expect_damaged(reopen(&path).await);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Re-opens the store in `path` and writes `n` more incidents.
async fn filled_more(path: &Path, n: usize) {
    let store = reopen(path).await.unwrap();
    for i in 0..n {
        store
            .create_incident(new_incident(&format!("later {i}")), Utc::now())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intact_store_reopens_with_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let ids = filled(&path, 50).await;
    let store = reopen(&path).await.unwrap();
    for id in ids {
        store.incident(id).await.unwrap();
    }
}

#[tokio::test]
async fn the_data_directory_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    private_dir(&data).unwrap();
    let store = SledStore::open(&data.join("db")).unwrap();
    store
        .create_incident(new_incident("private"), Utc::now())
        .await
        .unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("db")), 0o700);
    let mut files = 0;
    for e in std::fs::read_dir(data.join("db")).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            assert_eq!(mode(&e.path()), 0o600, "{}", e.path().display());
            files += 1;
        }
    }
    assert!(files >= 3, "sled's log, its config and the mark");
}

#[test]
fn a_read_only_data_directory_is_called_read_only() {
    let dir = Path::new("/srv/crier/db");
    for e in [
        std::io::Error::from(std::io::ErrorKind::ReadOnlyFilesystem),
        std::io::Error::from(std::io::ErrorKind::PermissionDenied),
    ] {
        let msg = open_error(dir, sled::Error::Io(e)).to_string();
        assert!(msg.contains("is read-only"), "{msg}");
        assert!(!msg.contains("another crier"), "{msg}");
    }
    let locked = open_error(
        dir,
        sled::Error::Io(std::io::Error::other(
            "could not acquire lock on \"/srv/crier/db/db\": WouldBlock",
        )),
    );
    assert!(locked.to_string().contains("another crier"), "{locked}");
}
