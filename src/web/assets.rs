//! The pages' static files (a stylesheet and an icon today; a vendored script later), compiled into the
//! binary so a page never depends on another host or on files beside the executable.

use axum::extract::Path;
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

/// `GET /assets/{file}`. Revalidated through the ETag (the stylesheet changes with releases).
pub async fn serve(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
