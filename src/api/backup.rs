//! `POST /api/v1/backup`: a consistent snapshot of the running store, streamed to the client
//! (`crier backup FILE` writes it to a file). sled locks its directory, so a second process cannot
//! read the store while crier serves; the server takes the snapshot itself.
//!
//! The snapshot is written to an unlinked temporary file in the data directory first (writers
//! pause only while it iterates the store, never while a slow client reads), then streamed from
//! that file, which disappears when the answer is done.

use super::openapi::PROBLEM;
use super::{ApiError, AppState};
use crate::store::backup::{create_private, BackupError, Summary};
use crate::store::port::Backups;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::io::{Read, Seek};

/// Chunks of the file sent per read.
const CHUNK: usize = 256 * 1024;

/// The backup file's shape, for the OpenAPI document: bytes (`type: string, format: binary`).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct BackupFile(Vec<u8>);

/// Headers that describe the snapshot (the client checks the file against them).
pub const SHA256_HEADER: &str = "x-crier-backup-sha256";
pub const RECORDS_HEADER: &str = "x-crier-backup-records";

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Store(e) => e.into(),
            // Not a failure of this server: its backend is backed up by other means.
            BackupError::Unsupported(m) => ApiError::new(StatusCode::NOT_IMPLEMENTED, m),
            other => {
                tracing::error!(error = %other, "backup failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the backup could not be written; check free space in the data directory and the server log",
                )
            }
        }
    }
}

/// Takes a consistent snapshot of the whole store (incidents, timelines, components,
/// subscribers, notices, the outbox with every delivery's state, alert groups) and answers it as
/// one file in crier's backup format, with a SHA-256 trailer. Writes pause while the store is
/// read (reads do not); the snapshot holds only writes that are on disk. Restore it offline
/// with `crier restore FILE --data DIR`.
#[utoipa::path(
    post,
    path = "/api/v1/backup",
    operation_id = "backup",
    tag = "backup",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The backup file (see docs/ARCHITECTURE.md, Backups); `X-Crier-Backup-Sha256` and `X-Crier-Backup-Records` describe it", body = BackupFile, content_type = "application/octet-stream"),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 503, description = "The store cannot write to disk, so it cannot vouch for a snapshot", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn backup(State(state): State<AppState>) -> Result<Response, ApiError> {
    let dir = state.store.data_dir();
    let tmp = dir.join(format!(".backup-{}.tmp", ulid::Ulid::new()));
    let file = create_private(&tmp).map_err(|e| {
        tracing::error!(error = %e, path = %tmp.display(), "cannot create the backup's temporary file");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the backup could not be written; check free space and permissions of the data directory",
        )
    })?;
    // Unlinked at once: the open file lives until the answer is sent, and nothing is left
    // behind if the client goes away or the process dies.
    let _ = std::fs::remove_file(&tmp);
    let started = std::time::Instant::now();
    let (mut file, summary) = state.store.backup_to_file(file).await?;
    tracing::info!(
        records = summary.records,
        bytes = summary.bytes,
        ms = started.elapsed().as_millis() as u64,
        "backup taken for an API client"
    );
    file.rewind().map_err(|e| BackupError::Io {
        what: "read back",
        path: "the backup".into(),
        source: e,
    })?;
    Ok(stream(file, &summary))
}

/// The answer: the file in chunks, read on a blocking thread.
fn stream(mut file: std::fs::File, s: &Summary) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || loop {
        let mut buf = vec![0u8; CHUNK];
        let chunk = match file.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                buf.truncate(n);
                Ok(Bytes::from(buf))
            }
            Err(e) => Err(e),
        };
        let failed = chunk.is_err();
        // The client went away: stop reading.
        if tx.blocking_send(chunk).is_err() || failed {
            return;
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|c| (c, rx))
    }));
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(s.bytes));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"crier-backup.crb\""),
    );
    if let Ok(v) = HeaderValue::from_str(&s.sha256) {
        h.insert(SHA256_HEADER, v);
    }
    h.insert(RECORDS_HEADER, HeaderValue::from(s.records));
    resp
}
