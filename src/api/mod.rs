//! The HTTP API under `/api/v1` (axum, JSON). Every write and every non-public read needs a bearer
//! token of a role the route allows — one table and one middleware in [`authz`], which also
//! writes the audit log; `/healthz`, `/readyz`, the public status summary, login and the one-click
//! unsubscribe do not.
//! Errors are `application/problem+json` (see [`error`]); bodies are size-limited. The OpenAPI 3.1
//! document of all of it is generated from the handlers and served at `/api/v1/openapi.json`
//! (see [`openapi`]).

pub mod approvals;
mod auth;
pub mod authz;
mod backup;
pub(crate) mod components;
pub mod deliveries;
pub mod error;
pub(crate) mod extract;
mod health;
mod hooks;
mod inbound;
pub mod incidents;
pub(crate) mod intake;
pub(crate) mod notices;
pub mod openapi;
mod panic;
pub(crate) mod preview;
pub mod session;
pub(crate) mod signin;
pub mod subscribers;
pub mod templates;
pub mod throttle;
pub(crate) mod users;

use crate::dispatch::Dispatcher;
use crate::render::{Settings, Templates};
use crate::store::Store;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{Principal, Tokens};
pub use authz::Caller;
pub use backup::SHA256_HEADER as BACKUP_SHA256_HEADER;
pub use error::ApiError;
/// The CSV import parser, public for the fuzz target in fuzz/ (not a stable API).
#[doc(hidden)]
pub use subscribers::{parse_import, ImportRows, ParsedImport};

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
    /// Token last-used times and the login throttle (see [`authz`]).
    pub team: Arc<authz::Team>,
    /// The config's `maintenance.remind_before`: a new maintenance window's reminder when the
    /// request names none.
    pub maintenance_remind_before: Option<std::time::Duration>,
    /// What needs a second person's approval (see [`approvals`]).
    pub approval: Arc<approvals::ApprovalRules>,
    /// The feeds' and CAP alerts' settings (see [`crate::web::feed_settings`]).
    pub public: Arc<crate::web::feed_settings::PublicSettings>,
    /// Self-service sign-ups: settings and abuse limits (see [`crate::web::subscribe`]).
    pub subscriptions: Arc<crate::web::subscribe::Subscriptions>,
    /// True once the server is shutting down: long-lived responses (server-sent events) end.
    pub closing: tokio::sync::watch::Receiver<bool>,
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

/// Builds the whole router. Every route is registered with utoipa-axum's `routes!` from its
/// handler's `#[utoipa::path]`, so the OpenAPI document served at `/api/v1/openapi.json` lists
/// exactly the routes axum serves (see [`openapi`]).
pub fn router(state: AppState, limits: Limits) -> Router {
    let (router, mut doc) = openapi_router(state.clone(), limits).split_for_parts();
    openapi::document_forbidden(&mut doc);
    router
        .layer(axum::Extension(openapi::Document::new(&doc)))
        .layer(axum::Extension(authz::Operations::from_doc(&doc)))
        // The pages people read in a browser (the public status page), beside the API.
        .merge(crate::web::router(
            &state.render.page,
            state.dispatcher.clock(),
        ))
        // The staff console, behind the same authorisation and audit middleware as the API.
        .merge(crate::web::console::router(state.clone(), limits))
        .fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "no such endpoint; the API lives under /api/v1 (see /api/v1/openapi.json)",
            )
        })
        .layer(axum::middleware::from_fn(extract::problem_responses))
        // The body limits, for the middleware (the console's CSV import form, see `session`).
        .layer(axum::Extension(limits))
        .with_state(state)
        // Outermost: a panic anywhere below answers 500 problem+json instead of a dropped
        // connection.
        .layer(axum::middleware::from_fn(panic::catch_panic))
}

/// The routes and, collected from the same handlers, their OpenAPI document.
fn openapi_router(state: AppState, limits: Limits) -> OpenApiRouter<AppState> {
    let import = OpenApiRouter::new()
        .routes(routes!(subscribers::import))
        .layer(DefaultBodyLimit::max(limits.import_max_bytes));
    let private = OpenApiRouter::new()
        .routes(routes!(incidents::create, incidents::list))
        .routes(routes!(incidents::show))
        .routes(routes!(incidents::update))
        .routes(routes!(incidents::resolve))
        .routes(routes!(incidents::reopen))
        .routes(routes!(incidents::publish))
        .routes(routes!(deliveries::status))
        .routes(routes!(deliveries::stream))
        .routes(routes!(deliveries::retry))
        .routes(routes!(intake::trigger))
        .routes(routes!(notices::create, notices::list))
        .routes(routes!(notices::show, notices::remove))
        .routes(routes!(templates::create, templates::list))
        .routes(routes!(
            templates::show,
            templates::change,
            templates::remove
        ))
        .routes(routes!(preview::preview))
        .routes(routes!(components::list))
        .routes(routes!(components::set))
        .routes(routes!(subscribers::add, subscribers::list))
        .routes(routes!(subscribers::remove, subscribers::change))
        .routes(routes!(backup::backup))
        .routes(routes!(users::logout))
        .routes(routes!(users::me))
        .routes(routes!(users::change_password))
        .routes(routes!(users::create_token, users::list_tokens))
        .routes(routes!(users::revoke_token))
        .routes(routes!(users::create_user, users::list_users))
        .routes(routes!(users::change_user, users::remove_user))
        .routes(routes!(users::reset_password))
        .routes(routes!(users::list_audit))
        .routes(routes!(users::verify_audit))
        .routes(routes!(approvals::list))
        .routes(routes!(approvals::approve))
        .routes(routes!(approvals::reject))
        .routes(routes!(signin::show_session))
        .routes(routes!(signin::begin_totp))
        .routes(routes!(signin::confirm_totp))
        .routes(routes!(signin::disable_totp))
        .routes(routes!(signin::reset_totp))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .merge(import);
    // Monitoring webhooks authenticate themselves (bearer token or HMAC signature). A
    // notification of a few hundred alerts is larger than any other body, so they have a limit
    // of their own.
    let monitoring_hooks = OpenApiRouter::new()
        .routes(routes!(intake::alertmanager))
        .routes(routes!(intake::grafana))
        .layer(DefaultBodyLimit::max(intake::HOOK_MAX_BYTES));
    let public = OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(health::public_status))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(hooks::twilio_status))
        .routes(routes!(inbound::twilio_inbound))
        .routes(routes!(subscribers::unsubscribe))
        .routes(routes!(users::login))
        .routes(routes!(signin::sign_in))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .merge(monitoring_hooks);
    // One table says who may call each route, and one middleware enforces it and writes the
    // audit log (see [`authz`]).
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(private)
        .merge(public)
        .route_layer(axum::middleware::from_fn_with_state(state, authz::enforce))
}
