//! The high-water mark: proof, kept outside sled, of how much the store has acknowledged. sled
//! recovers whatever prefix of its log it can read, so a truncated or bit-flipped log opens
//! without complaint as a shorter history. To notice, every group commit first writes an
//! increasing commit number into sled (`meta/commit`) and, once sled's flush and fsync succeed,
//! writes that number to `crier-mark` next to sled's files. At start-up the number sled recovered
//! must be at least the mark; if it is lower, acknowledged writes are gone and crier refuses to
//! start (an unacknowledged tail lost to `kill -9` or power loss is fine: it never reached the mark).
//!
//! The mark is written (`pwrite`) after every commit but synced at most once a second, so it
//! costs no second fsync per commit; after a power loss it may lag by that second, which only
//! narrows what is checked, never raises a false alarm (it is always at or below sled's number).

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The file name, inside sled's directory.
pub const MARK_FILE: &str = "crier-mark";

/// The key in the `meta` tree holding the last commit number written to sled.
pub const COMMIT_KEY: &str = "commit";

/// Where the mark of the store in `dir` lives.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(MARK_FILE)
}

/// Encodes commit `n`: the number and its complement, so a torn or damaged mark is noticed.
fn encode(n: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&n.to_be_bytes());
    b[8..].copy_from_slice(&(!n).to_be_bytes());
    b
}

/// The mark in `dir`: `Ok(None)` if there is none yet (a new store, or one written before marks
/// existed); an error if the file exists but does not hold a valid mark.
pub fn read(dir: &Path) -> io::Result<Option<u64>> {
    let raw = match std::fs::read(path(dir)) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let n = <[u8; 16]>::try_from(raw.as_slice())
        .ok()
        .and_then(|b| {
            let n = u64::from_be_bytes(b[..8].try_into().ok()?);
            let c = u64::from_be_bytes(b[8..].try_into().ok()?);
            (c == !n).then_some(n)
        })
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is damaged", path(dir).display()),
            )
        })?;
    Ok(Some(n))
}

/// An open mark file, rewritten in place by the flusher.
#[derive(Debug)]
pub struct Mark {
    file: File,
    last_sync: Option<std::time::Instant>,
}

impl Mark {
    /// Opens (creating, mode 0600) the mark in `dir` and writes `n` to it, synced.
    pub fn create(dir: &Path, n: u64) -> io::Result<Mark> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path(dir))?;
        let mut m = Mark {
            file,
            last_sync: None,
        };
        m.write(n)?;
        m.file.sync_data()?;
        Ok(m)
    }

    /// Records that commit `n` is durable in sled; syncs the file at most once a second.
    pub fn write(&mut self, n: u64) -> io::Result<()> {
        self.file.write_all_at(&encode(n), 0)?;
        let now = std::time::Instant::now();
        if self
            .last_sync
            .is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_secs(1))
        {
            self.file.sync_data()?;
            self.last_sync = Some(now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let mut m = Mark::create(dir.path(), 7).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(7));
        m.write(8).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(8));
        let mut raw = std::fs::read(path(dir.path())).unwrap();
        raw[3] ^= 0x10;
        std::fs::write(path(dir.path()), raw).unwrap();
        assert!(read(dir.path()).is_err());
    }
}
