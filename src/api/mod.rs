//! The HTTP API under `/api/v1` (axum, JSON). Every write and every non-public read needs a bearer
//! token; `/healthz`, `/readyz`, the public status summary and the one-click unsubscribe do not.
//! Errors are `application/problem+json` (see [`error`]); bodies are size-limited.

mod auth;
mod components;
mod deliveries;
pub mod error;
mod extract;
mod health;
mod hooks;
mod incidents;
mod intake;
mod notices;
mod panic;
mod preview;
mod subscribers;

use crate::dispatch::Dispatcher;
use crate::render::{Settings, Templates};
use crate::store::Store;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;
use std::sync::Arc;

pub use auth::{Principal, Tokens};
pub use error::ApiError;
/// The CSV import parser, public for the fuzz target in fuzz/ (not a stable API).
#[doc(hidden)]
pub use subscribers::{parse_import, ParsedImport};

/// What every handler can reach. axum clones the state for every request (and the auth
/// middleware once more), so it is one `Arc`: a clone is one reference count, not one per
/// sled tree of the store.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The contents of [`AppState`].
pub struct Shared {
    pub store: Store,
    pub tokens: Arc<Tokens>,
    pub templates: Arc<Templates>,
    pub render: Arc<Settings>,
    pub dispatcher: Dispatcher,
    pub intake: Arc<crate::intake::Intake>,
    /// Channels configured but not running, with why (`/readyz` shows them).
    pub skipped_channels: Arc<Vec<(String, String)>>,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Limits applied to request bodies.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub import_max_bytes: usize,
}

/// Builds the whole router.
pub fn router(state: AppState, limits: Limits) -> Router {
    let import = Router::new()
        .route("/api/v1/subscribers/import", post(subscribers::import))
        .layer(DefaultBodyLimit::max(limits.import_max_bytes));
    let private = Router::new()
        .route(
            "/api/v1/incidents",
            post(incidents::create).get(incidents::list),
        )
        .route("/api/v1/incidents/{id}", get(incidents::show))
        .route("/api/v1/incidents/{id}/updates", post(incidents::update))
        .route("/api/v1/incidents/{id}/resolve", post(incidents::resolve))
        .route("/api/v1/incidents/{id}/reopen", post(incidents::reopen))
        .route("/api/v1/incidents/{id}/publish", post(incidents::publish))
        .route("/api/v1/incidents/{id}/deliveries", get(deliveries::status))
        .route(
            "/api/v1/incidents/{id}/deliveries/stream",
            get(deliveries::stream),
        )
        .route(
            "/api/v1/incidents/{id}/deliveries/retry",
            post(deliveries::retry),
        )
        .route("/api/v1/triggers", post(intake::trigger))
        .route("/api/v1/notices", post(notices::create).get(notices::list))
        .route(
            "/api/v1/notices/{id}",
            get(notices::show).delete(notices::remove),
        )
        .route("/api/v1/preview", post(preview::preview))
        .route("/api/v1/components", get(components::list))
        .route("/api/v1/components/{name}", put(components::set))
        .route(
            "/api/v1/subscribers",
            post(subscribers::add).get(subscribers::list),
        )
        .route(
            "/api/v1/subscribers/{key}",
            axum::routing::delete(subscribers::remove).patch(subscribers::change),
        )
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .merge(import)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    // Monitoring webhooks authenticate themselves (bearer token or HMAC signature). A
    // notification of a few hundred alerts is larger than any other body, so they have a limit
    // of their own.
    let monitoring_hooks = Router::new()
        .route("/api/v1/hooks/alertmanager", post(intake::alertmanager))
        .route("/api/v1/hooks/grafana", post(intake::grafana))
        .layer(DefaultBodyLimit::max(intake::HOOK_MAX_BYTES));
    let public = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/status", get(health::public_status))
        .route("/api/v1/hooks/twilio/{channel}", post(hooks::twilio_status))
        .route(
            "/api/v1/unsubscribe/{token}",
            post(subscribers::unsubscribe),
        )
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .merge(monitoring_hooks);
    private
        .merge(public)
        .fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "no such endpoint; the API lives under /api/v1 (see docs/ARCHITECTURE.md)",
            )
        })
        .layer(axum::middleware::from_fn(extract::problem_responses))
        .with_state(state)
        // Outermost: a panic anywhere below answers 500 problem+json instead of a dropped
        // connection.
        .layer(axum::middleware::from_fn(panic::catch_panic))
}
