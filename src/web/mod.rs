//! The pages people read in a browser: the public status page today, the self-service
//! subscription pages and the staff console on the same footing later.
//!
//! Why a module apart from [`crate::api`]: the API speaks JSON to programs and is described by
//! its OpenAPI document; these pages speak HTML to people in their language. They share the
//! store and the state, but not their error shapes, their caching or their security headers.
//!
//! Every page is rendered on the server from the templates under `web/templates/` (compiled
//! into the binary, so a page cannot be missing at run time), works with JavaScript off, loads
//! nothing from another origin, and is sent with a strict Content-Security-Policy
//! ([`headers`]) and an ETag that answers a matching `If-None-Match` with 304
//! ([`conditional`]).

pub mod assets;
pub mod cache;
pub mod cap;
pub mod conditional;
pub mod console;
pub mod documents;
pub mod export;
pub mod feed_settings;
pub mod feeds;
pub mod headers;
pub mod lang;
pub mod manage;
pub mod page;
pub mod public;
pub mod settings;
pub mod status;
pub mod subscribe;
pub mod uptime;
pub mod v2;
mod xml;

use crate::api::AppState;
use axum::routing::{get, post};
use axum::Router;
pub use settings::PageSettings;

/// The page routes. Merged into the application router beside the API (see
/// [`crate::api::router`]). With `[status_page] enabled = false` there are no pages (only the
/// assets and the machine-readable documents); the status page answers at `[status_page] path`.
pub fn router(settings: &PageSettings, clock: crate::dispatch::Clock) -> Router<AppState> {
    let mut r = Router::new().route("/assets/{file}", get(assets::serve));
    if settings.enabled {
        r = r
            .route(&settings.path, get(status::page))
            .route("/history", get(status::history))
            .route("/incidents/{id}", get(status::incident));
    }
    // Self-service subscriptions (docs/SUBSCRIPTIONS.md).
    r = r
        .route("/subscribe", get(subscribe::show).post(subscribe::submit))
        .route("/subscribe/code", post(subscribe::code))
        .route(
            "/subscribe/confirm/{token}",
            get(subscribe::confirm_page).post(subscribe::confirm),
        )
        .route("/manage/{token}", get(manage::show).post(manage::change));
    // The machine-readable documents: Statuspage v2 JSON, Atom/RSS, CAP.
    r.merge(documents::router())
        .layer(axum::middleware::from_fn_with_state(
            clock,
            conditional::etag,
        ))
        .layer(axum::middleware::from_fn(headers::secure))
}
