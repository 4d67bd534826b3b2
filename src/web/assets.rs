//! The pages' static files (a stylesheet and an icon today; a vendored script later), compiled into the
//! binary so a page never depends on another host or on files beside the executable.

use crate::api::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// Name, content type and bytes of every asset.
const ASSETS: [(&str, &str, &[u8]); 4] = [
    (
        "crier.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/assets/crier.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../web/assets/favicon.svg"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/assets/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/assets/console.js"),
    ),
];

/// Every asset the pages use: the compiled-in ones and the configured logo, as (file name,
/// content type, bytes). The static copy writes these under `assets/`.
pub fn all(settings: &super::PageSettings) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut out: Vec<_> = ASSETS
        .iter()
        .map(|(n, t, b)| (*n, *t, b.to_vec()))
        .collect();
    if let Some(l) = &settings.logo {
        out.push((l.file, l.content_type, l.bytes.to_vec()));
    }
    out
}

/// `GET /assets/{file}`. Revalidated through the ETag (the stylesheet changes with releases).
pub async fn serve(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let cache = (header::CACHE_CONTROL, "public, max-age=300");
    if let Some(l) = state.render.page.logo.as_ref().filter(|l| l.file == file) {
        return (
            [(header::CONTENT_TYPE, l.content_type), cache],
            l.bytes.to_vec(),
        )
            .into_response();
    }
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => {
            ([(header::CONTENT_TYPE, *content_type), cache], *bytes).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
