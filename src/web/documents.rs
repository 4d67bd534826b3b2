//! The machine-readable public documents, in one list: the Statuspage v2 JSON, the Atom/RSS
//! history and the CAP index. Each is a function of the state alone — `(state) ->
//! (content type, bytes)` — so the server answers it and a static copy can write it with the same
//! bytes ([`DOCUMENTS`] for the fixed paths, [`dynamic_documents`] for the one CAP file per update).
//!
//! The routes are public (no token), open to other origins (`Access-Control-Allow-Origin: *` and
//! an answer to the CORS preflight), and revalidated through the pages' ETag/Last-Modified
//! middleware ([`super::conditional`]).

use super::public::Public;
use super::{cap, feeds, v2};
use crate::api::AppState;
use crate::store::port::Components;
use crate::store::StoreError;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;

/// Why a document could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot encode the document: {0}")]
    Encode(String),
}

/// A document whose path depends on the data: (path, content type, bytes).
pub type NamedDocument = (String, &'static str, Vec<u8>);

/// A document at a fixed path, made from the state alone ([`Document::make`]). A list of
/// names rather than of functions, so making one is a plain (unboxed) future of the store's
/// reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    Summary,
    Status,
    Components,
    Incidents,
    Unresolved,
    Maintenances,
    Upcoming,
    Active,
    Atom,
    Rss,
    CapIndex,
}

impl Document {
    /// The document's content type and bytes.
    pub async fn make(self, state: &Public<'_>) -> Result<(&'static str, Vec<u8>), DocError> {
        match self {
            Document::Summary => v2::summary(state).await,
            Document::Status => v2::status_json(state).await,
            Document::Components => v2::components_json(state).await,
            Document::Incidents => v2::incidents_json(state).await,
            Document::Unresolved => v2::unresolved_json(state).await,
            Document::Maintenances => v2::maintenances_json(state).await,
            Document::Upcoming => v2::upcoming_json(state).await,
            Document::Active => v2::active_json(state).await,
            Document::Atom => feeds::atom(state).await,
            Document::Rss => feeds::rss(state).await,
            Document::CapIndex => cap::index(state).await,
        }
    }
}

/// Every public document at a fixed path. The router serves each; a static export writes each
/// to `<dir><path>`.
pub const DOCUMENTS: [(&str, Document); 11] = [
    ("/api/v2/summary.json", Document::Summary),
    ("/api/v2/status.json", Document::Status),
    ("/api/v2/components.json", Document::Components),
    ("/api/v2/incidents.json", Document::Incidents),
    ("/api/v2/incidents/unresolved.json", Document::Unresolved),
    (
        "/api/v2/scheduled-maintenances.json",
        Document::Maintenances,
    ),
    (
        "/api/v2/scheduled-maintenances/upcoming.json",
        Document::Upcoming,
    ),
    (
        "/api/v2/scheduled-maintenances/active.json",
        Document::Active,
    ),
    ("/history.atom", Document::Atom),
    ("/history.rss", Document::Rss),
    ("/cap.atom", Document::CapIndex),
];

/// The documents whose paths depend on the data: one CAP alert per published update of the
/// recent incidents, as (path, content type, bytes).
pub async fn dynamic_documents(state: &Public<'_>) -> Result<Vec<NamedDocument>, DocError> {
    cap::all_alerts(state).await
}

/// The answer when the store cannot be read.
fn unavailable(e: &DocError) -> Response {
    tracing::error!(error = %e, "a public document could not be made");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "30")],
        "The status data cannot be read right now; try again in a minute.",
    )
        .into_response()
}

fn answer(result: Result<(&'static str, Vec<u8>), DocError>) -> Response {
    match result {
        Ok((content_type, bytes)) => {
            ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
        }
        Err(e) => unavailable(&e),
    }
}

/// `GET /cap/{id}.xml`.
async fn cap_file(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    match cap::alert_file(&Public::of(&state), &file).await {
        Ok(Some(bytes)) => answer(Ok((cap::CAP_TYPE, bytes))),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            "no such alert; /cap.atom lists the alerts there are",
        )
            .into_response(),
        Err(e) => unavailable(&e),
    }
}

/// The CORS preflight: any origin may GET these documents (no credentials are involved).
async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD, OPTIONS"),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "If-None-Match, If-Modified-Since, Cache-Control",
            ),
            (header::ACCESS_CONTROL_MAX_AGE, "86400"),
        ],
    )
        .into_response()
}

/// Adds `Access-Control-Allow-Origin: *` to every answer (errors and 304 included), and lets a
/// browser read the validators.
async fn cors(req: Request, next: Next) -> Response {
    let preflight = req.method() == Method::OPTIONS;
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if !preflight {
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("ETag, Last-Modified"),
        );
    }
    res
}

fn route(path: &'static str, doc: Document) -> MethodRouter<AppState> {
    get(move |State(state): State<AppState>| async move { cached(&state, path, doc).await })
        .options(preflight)
}

/// A document from the render cache ([`super::cache`]): made again when the store's public
/// generation or the clock's second moved, so a crowd polling during an incident costs one
/// render per second, and a finished write is never answered stale.
async fn cached(state: &AppState, path: &'static str, doc: Document) -> Response {
    // Read before making: a write after this point moves it and the next reader makes it again.
    let generation = match state.store.public_generation().await {
        Ok(g) => g,
        Err(e) => return unavailable(&DocError::Store(e)),
    };
    let second = state.dispatcher.now().timestamp();
    let public = Public::of(state);
    let made = state
        .render
        .page
        .cache
        .get_or_make(path, generation, second, || doc.make(&public))
        .await;
    match made {
        Ok(d) => {
            let mut res = ([(header::CONTENT_TYPE, d.content_type)], d.html).into_response();
            if let Ok(v) = HeaderValue::from_str(&d.etag) {
                res.headers_mut().insert(header::ETAG, v);
            }
            res
        }
        Err(e) => unavailable(&e),
    }
}

/// The routes of every document. Merged into [`super::router`] inside its ETag and header layers.
pub fn router() -> Router<AppState> {
    let mut r = Router::new();
    for (path, doc) in DOCUMENTS {
        r = r.route(path, route(path, doc));
    }
    r.route("/cap/{file}", get(cap_file).options(preflight))
        .layer(axum::middleware::from_fn(cors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_listed_once() {
        let mut paths: Vec<&str> = DOCUMENTS.iter().map(|(p, _)| *p).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), DOCUMENTS.len());
        assert!(paths.iter().all(|p| p.starts_with('/')));
    }
}
