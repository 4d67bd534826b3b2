//! The static copy: the public documents written as files, so any static host or bucket can
//! serve the status while crier's own host is down.
//!
//! What is exported is one list, [`DOCUMENTS`]: each entry renders some of the public
//! documents (path, content type, bytes) from the store, the settings and an instant. The
//! server's handlers use the same view and render functions, so a file equals what the server
//! answers for the same URL (in English: a static host cannot negotiate the language).
//! The feeds, the Statuspage v2 JSON and the CAP alerts are in it too, from the list the router
//! serves them by ([`super::documents`]).
//!
//! Every file is written atomically: a temporary file beside it, `fsync`, `rename` over the
//! target, `fsync` of the directory. A crash leaves either the old file or the new one, never a
//! half-written one; a temporary file a crash left behind is removed by the next export. Files
//! whose bytes did not change are not rewritten.
//!
//! `crier serve` with `[status_page] static_export_dir` exports once a second when anything
//! public changed (the rendered bytes differ); `crier export-static DIR` exports once.

use super::feed_settings::PublicSettings;
use super::page::{render_html, PageLang};
use super::public::Public;
use super::{assets, status};
use crate::domain::IncidentFilter;
use crate::render::Settings;
use crate::store::port::Incidents;
use crate::store::{Store, StoreError};
use chrono::{DateTime, Datelike, Utc};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the export's file writer stopped: {0}")]
    Writer(String),
    #[error("a page could not be rendered: {0}")]
    Render(#[from] minijinja::Error),
    #[error(transparent)]
    Document(#[from] super::documents::DocError),
    #[error("cannot write {}: {source}; check that the directory exists and is writable", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One public document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Relative to the export directory, `/`-separated, e.g. `incidents/<id>/index.html`.
    pub path: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// What a document is rendered from.
pub struct Source<'a> {
    pub store: &'a Store,
    pub settings: &'a Settings,
    /// The feeds' and CAP alerts' settings.
    pub public: &'a PublicSettings,
    pub now: DateTime<Utc>,
}

/// A family of public documents, rendered together ([`Family::render`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    StatusPage,
    History,
    IncidentPages,
    Assets,
    Machine,
}

impl Family {
    /// Renders the family's documents from `s`.
    pub async fn render(self, s: &Source<'_>) -> Result<Vec<Document>, ExportError> {
        match self {
            Family::StatusPage => status_page(s).await,
            Family::History => history(s).await,
            Family::IncidentPages => incident_pages(s).await,
            Family::Assets => asset_files(s),
            Family::Machine => machine_documents(s).await,
        }
    }
}

/// Every public document family: a name (for logs) and the family.
pub const DOCUMENTS: &[(&str, Family)] = &[
    ("status page", Family::StatusPage),
    ("history", Family::History),
    ("incident pages", Family::IncidentPages),
    ("assets", Family::Assets),
    ("feeds, Statuspage v2 JSON and CAP alerts", Family::Machine),
];

const HTML: &str = "text/html; charset=utf-8";
const EN: PageLang = PageLang("en");

fn html(
    path: String,
    s: &Source,
    template: &str,
    v: minijinja::Value,
) -> Result<Document, ExportError> {
    Ok(Document {
        path,
        content_type: HTML,
        bytes: render_html(s.settings, EN, template, v)?.into_bytes(),
    })
}

/// The file a URL path is served from: `/` → `index.html`, `/status` → `status/index.html`.
pub fn file_for(url_path: &str) -> String {
    let p = url_path.trim_matches('/');
    if p.is_empty() {
        "index.html".into()
    } else {
        format!("{p}/index.html")
    }
}

async fn status_page(s: &Source<'_>) -> Result<Vec<Document>, ExportError> {
    let v = status::status_view(s.store, s.settings, s.now, EN).await?;
    Ok(vec![html(
        file_for(&s.settings.page.path),
        s,
        "status.html",
        v,
    )?])
}

async fn history(s: &Source<'_>) -> Result<Vec<Document>, ExportError> {
    let month = s
        .now
        .with_timezone(&s.settings.timezone)
        .date_naive()
        .with_day(1)
        .unwrap_or_else(|| s.now.date_naive());
    let v = status::history_view(s.store, s.settings, s.now, EN, month).await?;
    Ok(vec![html(file_for("/history"), s, "history.html", v)?])
}

async fn incident_pages(s: &Source<'_>) -> Result<Vec<Document>, ExportError> {
    let all = s
        .store
        .incidents(&IncidentFilter {
            published_only: true,
            limit: usize::MAX,
            ..Default::default()
        })
        .await?;
    let mut out = Vec::with_capacity(all.len());
    for i in all {
        if let Some(v) = status::incident_view(s.store, s.settings, EN, i.id).await? {
            out.push(html(
                file_for(&format!("/incidents/{}", i.id)),
                s,
                "incident.html",
                v,
            )?);
        }
    }
    Ok(out)
}

fn asset_files(s: &Source) -> Result<Vec<Document>, ExportError> {
    Ok(assets::all(&s.settings.page)
        .into_iter()
        .map(|(name, content_type, bytes)| Document {
            path: format!("assets/{name}"),
            content_type,
            bytes,
        })
        .collect())
}

/// The machine-readable documents ([`super::documents`]): the same list the router serves.
async fn machine_documents(s: &Source<'_>) -> Result<Vec<Document>, ExportError> {
    let p = Public {
        store: s.store,
        render: s.settings,
        public: s.public,
    };
    let mut out = Vec::new();
    for (path, doc) in super::documents::DOCUMENTS {
        let (content_type, bytes) = doc.make(&p).await?;
        out.push(Document {
            path: path.trim_start_matches('/').to_owned(),
            content_type,
            bytes,
        });
    }
    for (path, content_type, bytes) in super::documents::dynamic_documents(&p).await? {
        out.push(Document {
            path: path.trim_start_matches('/').to_owned(),
            content_type,
            bytes,
        });
    }
    Ok(out)
}

/// Every public document, rendered.
pub async fn documents(s: &Source<'_>) -> Result<Vec<Document>, ExportError> {
    let mut out = Vec::new();
    for (_, family) in DOCUMENTS {
        out.extend(family.render(s).await?);
    }
    Ok(out)
}

/// The suffix of temporary files (removed by the next export if a crash left one).
const TEMP_SUFFIX: &str = ".crier-tmp";

/// Where [`write_atomic`] stops (tests simulate a crash between the temporary write and the
/// rename).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Never,
    BeforeRename,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to `target` atomically. Returns false when the file already held them.
fn write_atomic(target: &Path, bytes: &[u8], stop: Stop) -> Result<bool, ExportError> {
    if std::fs::read(target).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}{TEMP_SUFFIX}"));
    {
        let mut f = std::fs::File::create(&temp).map_err(io(&temp))?;
        f.write_all(bytes).map_err(io(&temp))?;
        f.sync_all().map_err(io(&temp))?;
    }
    if stop == Stop::BeforeRename {
        return Err(ExportError::Io {
            path: temp,
            source: std::io::Error::other("stopped before the rename (test)"),
        });
    }
    std::fs::rename(&temp, target).map_err(io(target))?;
    // The rename itself is durable once the directory is synced.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(true)
}

/// Removes temporary files an interrupted export left under `dir`.
fn clean(dir: &Path) -> Result<(), ExportError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries {
        let e = e.map_err(io(dir))?;
        let p = e.path();
        if e.file_type().map_err(io(&p))?.is_dir() {
            clean(&p)?;
        } else if p.to_string_lossy().ends_with(TEMP_SUFFIX) {
            std::fs::remove_file(&p).map_err(io(&p))?;
        }
    }
    Ok(())
}

/// Writes `docs` under `dir`; returns how many files changed.
fn write_all(dir: &Path, docs: &[Document], stop: Stop) -> Result<usize, ExportError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    clean(dir)?;
    let mut changed = 0;
    for d in docs {
        // Paths come from this module (fixed names and ULIDs), never from a request.
        let target = dir.join(&d.path);
        if write_atomic(&target, &d.bytes, stop)? {
            changed += 1;
        }
    }
    Ok(changed)
}

/// Renders every public document and writes the ones that changed under `dir`. Returns how
/// many files were written.
pub async fn export(dir: &Path, s: &Source<'_>) -> Result<usize, ExportError> {
    let docs = documents(s).await?;
    let dir = dir.to_owned();
    // The files are written off the async workers: each is synced to disk.
    tokio::task::spawn_blocking(move || write_all(&dir, &docs, Stop::Never))
        .await
        .map_err(|e| ExportError::Writer(e.to_string()))?
}

/// The server's exporter: once a second, writes what changed (nothing when nothing did), until
/// `stop` turns true.
pub async fn run(
    dir: PathBuf,
    store: Store,
    settings: std::sync::Arc<Settings>,
    public: std::sync::Arc<PublicSettings>,
    clock: crate::dispatch::Dispatcher,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let source = Source {
            store: &store,
            settings: &settings,
            public: &public,
            now: clock.now(),
        };
        match export(&dir, &source).await {
            Ok(n) => {
                if n > 0 {
                    tracing::debug!(files = n, "static copy updated");
                }
                if failing {
                    tracing::info!(dir = %dir.display(), "the static copy is written again");
                }
                failing = false;
            }
            Err(e) if !failing => {
                tracing::warn!(error = %e, "the static copy could not be written; retrying every second");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(path: &str, bytes: &str) -> Document {
        Document {
            path: path.into(),
            content_type: HTML,
            bytes: bytes.as_bytes().to_vec(),
        }
    }

    #[test]
    fn an_export_interrupted_before_the_rename_leaves_the_old_file_and_the_next_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(
            write_all(d, &[doc("index.html", "old page")], Stop::Never).unwrap(),
            1
        );
        // Unchanged bytes are not rewritten.
        assert_eq!(
            write_all(d, &[doc("index.html", "old page")], Stop::Never).unwrap(),
            0
        );
        // A crash between the temporary write and the rename.
        let e = write_all(
            d,
            &[doc("index.html", "new page, complete")],
            Stop::BeforeRename,
        );
        assert!(e.is_err());
        assert_eq!(
            std::fs::read_to_string(d.join("index.html")).unwrap(),
            "old page"
        );
        let temp = d.join(format!(".index.html{TEMP_SUFFIX}"));
        assert!(temp.exists(), "the temporary file is what the crash left");
        // No partial target anywhere: only the old file and the temporary one.
        let names: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // The next export cleans up and writes the new page.
        write_all(
            d,
            &[
                doc("index.html", "newer page"),
                doc("incidents/x/index.html", "i"),
            ],
            Stop::Never,
        )
        .unwrap();
        assert!(!temp.exists());
        assert_eq!(
            std::fs::read_to_string(d.join("index.html")).unwrap(),
            "newer page"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("incidents/x/index.html")).unwrap(),
            "i"
        );
    }

    #[test]
    fn url_paths_map_to_index_files() {
        assert_eq!(file_for("/"), "index.html");
        assert_eq!(file_for("/status"), "status/index.html");
        assert_eq!(file_for("/incidents/01J"), "incidents/01J/index.html");
    }
}
