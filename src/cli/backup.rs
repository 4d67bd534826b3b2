//! `crier backup FILE` (through the running server, or `--offline` from the data directory) and
//! `crier restore FILE --data DIR` (offline). A backup is written to a temporary file beside
//! FILE, checked completely (structure and SHA-256), synced and only then renamed to FILE, so
//! FILE is never a partial backup.

use super::client::{CliError, Client};
use super::output;
use crate::store::backup::{self, BackupError, Summary};
use crate::store::port::Backups;
use crate::store::{Store, StoreError};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the CLI waits for a whole backup to arrive.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// A backup or restore failure as a CLI failure: a refused file is "rejected" (exit 3), a
/// refused target a usage error (exit 2), I/O and store failures "unavailable" (exit 4).
fn cli_error(e: BackupError) -> CliError {
    match e {
        BackupError::Invalid { .. } | BackupError::Newer { .. } => CliError::Rejected(e.to_string()),
        BackupError::Target(m) => CliError::Usage(m),
        BackupError::Store(StoreError::Locked(dir)) => CliError::Usage(format!(
            "the store in {} is in use by a running crier; back it up through that server with `crier backup FILE` (without --offline)",
            dir.display()
        )),
        other => CliError::Unavailable(other.to_string()),
    }
}

/// Refuses to overwrite FILE without `--force`, before anything is asked or written.
fn check_destination(file: &Path, force: bool) -> Result<(), CliError> {
    if file.is_dir() {
        return Err(CliError::Usage(format!(
            "{} is a directory; name the backup file, e.g. {}/crier.crb",
            file.display(),
            file.display()
        )));
    }
    if file.exists() && !force {
        return Err(CliError::Usage(format!(
            "{} exists; choose another name or pass --force to replace it",
            file.display()
        )));
    }
    Ok(())
}

fn temp_for(file: &Path) -> PathBuf {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".into());
    file.with_file_name(format!(".{name}.partial"))
}

fn describe(what: &str, file: &Path, s: &Summary, json_out: bool) {
    if json_out {
        output::print_json(&json!({
            "file": file.display().to_string(),
            "created": s.created.to_rfc3339(),
            "schema": s.schema,
            "trees": s.trees,
            "records": s.records,
            "bytes": s.bytes,
            "sha256": s.sha256,
        }));
    } else {
        println!(
            "{what} {}: {} records in {} trees, {} bytes, taken {}, sha256 {}",
            file.display(),
            s.records,
            s.trees,
            s.bytes,
            s.created.format("%Y-%m-%d %H:%M:%S UTC"),
            s.sha256
        );
    }
}

/// `crier backup FILE`: asks the running server for a snapshot and saves it, checked.
pub async fn backup_online(
    client: &Client,
    file: &Path,
    force: bool,
    json_out: bool,
) -> Result<(), CliError> {
    check_destination(file, force)?;
    let tmp = temp_for(file);
    let _ = std::fs::remove_file(&tmp);
    let mut out = backup::create_private(&tmp).map_err(|e| {
        CliError::Usage(format!(
            "cannot create {}: {e}; check that its directory exists and is writable",
            tmp.display()
        ))
    })?;
    let result = async {
        let (headers, _) = client
            .download("/api/v1/backup", &mut out, DOWNLOAD_TIMEOUT)
            .await?;
        out.sync_all()
            .map_err(|e| CliError::Usage(format!("cannot sync {}: {e}", tmp.display())))?;
        let summary = backup::verify(&tmp).map_err(|e| {
            CliError::Unavailable(format!("the backup did not arrive intact: {e}"))
        })?;
        let announced = headers
            .get(crate::api::BACKUP_SHA256_HEADER)
            .and_then(|v| v.to_str().ok());
        if announced.is_some_and(|a| a != summary.sha256) {
            return Err(CliError::Unavailable(
                "the backup did not arrive intact: its checksum differs from the one the server announced; try again".into(),
            ));
        }
        finish(&tmp, file)?;
        Ok(summary)
    }
    .await;
    match result {
        Ok(summary) => {
            describe("backup written to", file, &summary, json_out);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Renames the checked temporary file to FILE and syncs the directory.
fn finish(tmp: &Path, file: &Path) -> Result<(), CliError> {
    std::fs::rename(tmp, file)
        .map_err(|e| CliError::Usage(format!("cannot rename to {}: {e}", file.display())))?;
    backup::sync_parent(file).map_err(|e| {
        CliError::Usage(format!(
            "cannot sync the directory of {}: {e}",
            file.display()
        ))
    })
}

/// `crier backup FILE --offline`: opens the store in `data` (no server may be running on it).
pub async fn backup_offline(
    data: &Path,
    file: &Path,
    force: bool,
    json_out: bool,
) -> Result<(), CliError> {
    check_destination(file, force)?;
    let store_dir = data.join("db");
    if !store_dir.join("db").exists() {
        return Err(CliError::Usage(format!(
            "there is no crier store in {}; point --data at the server's data directory",
            data.display()
        )));
    }
    let store = Store::open(&store_dir).map_err(|e| cli_error(e.into()))?;
    let tmp = temp_for(file);
    let _ = std::fs::remove_file(&tmp);
    let summary = async {
        let out = backup::create_private(&tmp).map_err(|e| {
            CliError::Usage(format!(
                "cannot create {}: {e}; check that its directory exists and is writable",
                tmp.display()
            ))
        })?;
        store.backup_to_file(out).await.map_err(cli_error)?;
        let summary = backup::verify(&tmp).map_err(cli_error)?;
        finish(&tmp, file)?;
        Ok(summary)
    }
    .await;
    match summary {
        Ok(s) => {
            describe("backup written to", file, &s, json_out);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// `crier restore FILE --data DIR [--force]`. Runs outside any async runtime (it opens the
/// restored store on one of its own to check it).
pub fn restore(
    data: Option<&Path>,
    file: &Path,
    force: bool,
    json_out: bool,
) -> Result<(), CliError> {
    let Some(data) = data else {
        return Err(CliError::Usage(
            "name the data directory to restore into with --data DIR (a new or empty one, or --force to replace the store in it)".into(),
        ));
    };
    if !file.is_file() {
        return Err(CliError::Usage(format!(
            "{} is not a file; name a backup written by `crier backup` or a scheduled backup (crier-backup-*.crb)",
            file.display()
        )));
    }
    let r =
        backup::restore(file, data, force, crate::clock::Clock::wall().now()).map_err(cli_error)?;
    if json_out {
        output::print_json(&json!({
            "file": file.display().to_string(),
            "data": data.display().to_string(),
            "created": r.summary.created.to_rfc3339(),
            "trees": r.summary.trees,
            "records": r.summary.records,
            "sha256": r.summary.sha256,
            "replaced": r.replaced.as_ref().map(|p| p.display().to_string()),
        }));
    } else {
        describe("restored", file, &r.summary, false);
        println!("into {}", r.store_dir.display());
        if let Some(old) = &r.replaced {
            println!(
                "the store that was there is kept in {} (delete it once the restored one serves)",
                old.display()
            );
        }
        println!("start it with `crier serve --data {}`", data.display());
    }
    Ok(())
}
