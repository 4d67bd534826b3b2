//! Scheduled backups (`[backup]` in crier.toml): every `every`, a consistent snapshot of the
//! store (see [`crate::store::backup`]) is written to `<dir>/crier-backup-<UTC time>.crb`
//! (temporary file, fsync, rename) and the oldest are removed so that `keep` remain. Each backup
//! and each removal is logged; a failed backup is logged and tried again at the next interval.
//!
//! The schedule survives restarts: the next backup is due `every` after the newest file in the
//! directory (or at once when there is none or it is overdue), so frequent restarts neither
//! skip backups nor take extra ones.

use crate::dispatch::Clock;
use crate::domain::Span;
use crate::store::backup::EXTENSION;
use crate::store::port::Backups;
use crate::store::Store;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// File names: `crier-backup-20260329T120000.123Z.crb` (UTC; names sort in time order).
const PREFIX: &str = "crier-backup-";
const TIME_FORMAT: &str = "%Y%m%dT%H%M%S%.3fZ";

/// The `[backup]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupFile {
    /// How often, e.g. "1h" (required to schedule backups).
    pub every: Option<String>,
    /// How many backups to keep (default 24).
    pub keep: Option<usize>,
    /// Where (default `<data_dir>/backups`).
    pub dir: Option<PathBuf>,
}

/// Validated scheduled-backup settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSettings {
    pub every: Duration,
    pub keep: usize,
    pub dir: PathBuf,
}

/// The most backups `keep` may ask for.
pub const MAX_KEEP: usize = 10_000;

impl BackupSettings {
    /// Validates the table; `None` when no backups are scheduled. Errors name the key.
    pub fn from_file(f: Option<BackupFile>, data_dir: &Path) -> Result<Option<Self>, String> {
        let Some(f) = f else { return Ok(None) };
        let Some(every) = f.every else {
            if f.keep.is_some() || f.dir.is_some() {
                return Err(
                    "backup.every is missing; say how often to back up, e.g. every = \"1h\" (or remove the [backup] table)"
                        .into(),
                );
            }
            return Ok(None);
        };
        let every = Span::parse_in(&every, Span::from_secs(1), Span::MAX)
            .map_err(|e| format!("backup.every: {e}"))?
            .as_std();
        let keep = f.keep.unwrap_or(24);
        if !(1..=MAX_KEEP).contains(&keep) {
            return Err(format!(
                "backup.keep = {keep} is out of range; keep 1 to {MAX_KEEP} backups"
            ));
        }
        let dir = f.dir.unwrap_or_else(|| data_dir.join("backups"));
        if dir.starts_with(data_dir.join("db")) {
            return Err(format!(
                "backup.dir = \"{}\" is inside the store's own directory; choose another (best: another disk)",
                dir.display()
            ));
        }
        Ok(Some(BackupSettings { every, keep, dir }))
    }

    /// Start-up check: creates the directory (mode 0700: backups hold subscribers' addresses)
    /// and proves it is writable, so a bad directory stops `serve` instead of failing an hour later.
    pub fn prepare(&self) -> Result<(), String> {
        crate::store::private_dir(&self.dir).map_err(|e| {
            format!(
                "backup.dir = \"{}\" cannot be used: {e}",
                self.dir.display()
            )
        })?;
        let probe = self
            .dir
            .join(format!(".crier-probe-{}", std::process::id()));
        crate::store::backup::create_private(&probe)
            .and_then(|_| std::fs::remove_file(&probe))
            .map_err(|e| {
                format!(
                    "backup.dir = \"{}\" is not writable ({e}); make it writable for the user running crier or choose another",
                    self.dir.display()
                )
            })?;
        // Leftovers of backups interrupted by a crash.
        for name in names(&self.dir) {
            if name.starts_with(&format!(".{PREFIX}")) && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(self.dir.join(name));
            }
        }
        Ok(())
    }
}

/// Every file name in `dir` (none if it cannot be read).
fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The name of a scheduled backup taken at `at`.
pub fn file_name(at: DateTime<Utc>) -> String {
    format!("{PREFIX}{}.{EXTENSION}", at.format(TIME_FORMAT))
}

/// When the scheduled backup named `name` was taken; `None` for any other file.
fn taken_at(name: &str) -> Option<DateTime<Utc>> {
    let stamp = name
        .strip_prefix(PREFIX)?
        .strip_suffix(EXTENSION)?
        .strip_suffix('.')?;
    NaiveDateTime::parse_from_str(stamp, TIME_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

/// The scheduled backups in `dir`, oldest first.
pub fn existing(dir: &Path) -> Vec<(DateTime<Utc>, PathBuf)> {
    let mut found: Vec<(DateTime<Utc>, PathBuf)> = names(dir)
        .into_iter()
        .filter_map(|n| taken_at(&n).map(|t| (t, dir.join(n))))
        .collect();
    found.sort();
    found
}

/// Removes the oldest scheduled backups so that `keep` remain; other files are never touched.
/// Returns the files removed.
pub fn prune(dir: &Path, keep: usize) -> Vec<PathBuf> {
    let found = existing(dir);
    let excess = found.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for (_, path) in found.into_iter().take(excess) {
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot remove an old backup")
            }
        }
    }
    removed
}

/// Takes one scheduled backup and prunes; logs what happened.
pub async fn backup_once(store: &Store, s: &BackupSettings, clock: &Clock) {
    let path = s.dir.join(file_name(clock.now()));
    let started = std::time::Instant::now();
    match store.backup_to_path(&path).await {
        Ok(summary) => {
            tracing::info!(
                file = %path.display(),
                records = summary.records,
                bytes = summary.bytes,
                sha256 = %summary.sha256,
                ms = started.elapsed().as_millis() as u64,
                "scheduled backup written"
            );
            for old in prune(&s.dir, s.keep) {
                tracing::info!(file = %old.display(), keep = s.keep, "old backup removed");
            }
        }
        Err(e) => tracing::error!(
            file = %path.display(),
            error = %e,
            "scheduled backup failed; trying again at the next interval"
        ),
    }
}

/// The scheduled-backup task: runs until `stop` turns true (a backup in progress finishes).
/// File names carry the time on the server's clock.
pub async fn run(store: Store, s: BackupSettings, clock: Clock, mut stop: watch::Receiver<bool>) {
    let now = clock.now();
    let first = existing(&s.dir)
        .last()
        .and_then(|(t, _)| chrono::Duration::from_std(s.every).ok().map(|e| *t + e))
        .and_then(|due| (due - now).to_std().ok())
        .unwrap_or(Duration::ZERO);
    tracing::info!(
        dir = %s.dir.display(),
        every_s = s.every.as_secs(),
        keep = s.keep,
        first_in_s = first.as_secs(),
        "scheduled backups on"
    );
    let mut wait = first;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        backup_once(&store, &s, &clock).await;
        wait = s.every;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Option<BackupSettings>, String> {
        #[derive(Deserialize)]
        struct F {
            backup: Option<BackupFile>,
        }
        let f: F = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        BackupSettings::from_file(f.backup, Path::new("/srv/crier"))
    }

    #[test]
    fn settings_are_validated_with_the_key_named() {
        assert_eq!(parse("").unwrap(), None);
        let s = parse("[backup]\nevery = \"1h\"\n").unwrap().unwrap();
        assert_eq!(
            s,
            BackupSettings {
                every: Duration::from_secs(3600),
                keep: 24,
                dir: "/srv/crier/backups".into()
            }
        );
        for (bad, said) in [
            ("[backup]\nkeep = 3\n", "backup.every is missing"),
            ("[backup]\nevery = \"500ms\"\n", "backup.every"),
            ("[backup]\nevery = \"9999999999h\"\n", "backup.every"),
            ("[backup]\nevery = \"1h\"\nkeep = 0\n", "backup.keep"),
            (
                "[backup]\nevery = \"1h\"\ndir = \"/srv/crier/db/x\"\n",
                "backup.dir",
            ),
            ("[backup]\nevry = \"1h\"\n", "evry"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(said), "{bad}: {e}");
        }
    }

    #[test]
    fn names_round_trip_and_pruning_keeps_the_newest_and_nothing_else_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = DateTime::parse_from_rfc3339("2026-03-29T12:00:00.123Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(taken_at(&file_name(t0)), Some(t0));
        for i in 0..5 {
            let at = t0 + chrono::Duration::hours(i);
            std::fs::write(dir.path().join(file_name(at)), b"x").unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
        std::fs::write(dir.path().join("crier-backup-garbage.crb"), b"mine").unwrap();
        let removed = prune(dir.path(), 2);
        assert_eq!(removed.len(), 3);
        let left: Vec<_> = existing(dir.path()).into_iter().map(|(t, _)| t).collect();
        assert_eq!(
            left,
            vec![
                t0 + chrono::Duration::hours(3),
                t0 + chrono::Duration::hours(4)
            ]
        );
        assert!(dir.path().join("notes.txt").exists());
        assert!(dir.path().join("crier-backup-garbage.crb").exists());
    }

    #[tokio::test]
    async fn a_scheduled_backup_is_named_by_the_servers_clock() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let s = BackupSettings {
            every: Duration::from_secs(3600),
            keep: 24,
            dir: dir.path().join("backups"),
        };
        std::fs::create_dir_all(&s.dir).unwrap();
        let at: DateTime<Utc> = "2031-03-30T01:30:00Z".parse().unwrap();
        backup_once(&store, &s, &Clock::starting_at(at)).await;
        let names: Vec<String> = existing(&s.dir)
            .into_iter()
            .map(|(t, p)| {
                assert_eq!(t.format("%Y-%m-%d %H").to_string(), "2031-03-30 01");
                p.file_name().unwrap().to_string_lossy().into_owned()
            })
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(names[0].starts_with(&file_name(at)[..24]), "{names:?}");
        store.close().await.unwrap();
    }
}
