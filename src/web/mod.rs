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
pub mod conditional;
pub mod console;
pub mod headers;
pub mod lang;
pub mod page;
mod status;

use crate::api::AppState;
use axum::routing::get;
use axum::Router;

/// The page routes. Merged into the application router beside the API (see
/// [`crate::api::router`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(status::page))
        .route("/assets/{file}", get(assets::serve))
        .layer(axum::middleware::from_fn(conditional::etag))
        .layer(axum::middleware::from_fn(headers::secure))
}
