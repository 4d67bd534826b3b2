//! The staff console under `/console/`: server-rendered pages for the communications team
//! (docs/CONSOLE.md).
//!
//! How it stays one system with the API:
//! - **the same middleware**: every console route has a row in [`crate::api::authz::CONSOLE`]
//!   and passes through [`crate::api::authz::enforce`] — the session cookie, the CSRF checks (a
//!   form carries the `csrf` field), the least role, and the audit entry of a write;
//! - **the same use cases**: a form post calls the API handler itself (e.g.
//!   [`crate::api::incidents::create`]) with the form turned into the API's request body, so a
//!   rule, its message and its audit note exist once; the console only turns the answer into a
//!   page (a 303 to the next page, or the form again with the API's message next to its field);
//! - **the same words for errors**: a refusal of the middleware (no session, wrong role, no CSRF
//!   token) is shown as a page with the API's detail, and a missing or ended session sends the
//!   browser to the login page instead.
//!
//! Pages work without JavaScript; `console.js` (served from `/assets/`, the CSP allows only
//! same-origin scripts) adds the live preview while typing, the self-refreshing dashboard, and
//! the incident's delivery progress over server-sent events (`/console/incidents/{id}/stream`).

mod account;
mod channels;
mod compose;
mod dashboard;
mod incident;
mod login;
mod maintenance;
mod notices;
mod records;
mod subscribers;
mod templates;
mod users;

use super::page::{render, PageLang};
use crate::api::authz::{self, Caller};
use crate::api::session::SessionAuth;
use crate::api::AppState;
use crate::domain::Role;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use minijinja::{context, Value};

/// The console's routes, behind the authorisation and audit middleware.
pub fn router(state: AppState, limits: crate::api::Limits) -> Router<AppState> {
    Router::new()
        .route("/console/login", get(login::page).post(login::submit))
        .route("/console/logout", post(login::logout))
        .route("/console/account", get(account::page))
        .route("/console/account/totp", post(account::begin))
        .route("/console/account/totp/confirm", post(account::confirm))
        .route("/console/", get(dashboard::page))
        .route("/console/live", get(dashboard::live))
        .route("/console/compose", get(compose::page))
        .route("/console/preview", post(compose::preview))
        .route("/console/confirm", post(compose::confirm))
        .route("/console/incidents", post(compose::create))
        .route("/console/incidents/{id}", get(incident::page))
        .route("/console/incidents/{id}/progress", get(incident::progress))
        .route("/console/incidents/{id}/stream", get(incident::stream))
        .route("/console/incidents/{id}/updates", post(compose::update))
        .route("/console/incidents/{id}/resolve", post(incident::resolve))
        .route("/console/incidents/{id}/reopen", post(incident::reopen))
        .route("/console/incidents/{id}/publish", post(incident::publish))
        .route("/console/incidents/{id}/retry", post(incident::retry))
        .route("/console/approvals/{id}/approve", post(incident::approve))
        .route("/console/approvals/{id}/reject", post(incident::reject))
        .route("/console/audit", get(records::audit))
        .route("/console/components", get(records::components))
        .route("/console/components/{name}", post(records::set_component))
        .route("/console/channels", get(channels::page))
        .route("/console/channels/{name}/check", post(channels::check))
        .route("/console/notices", get(notices::page).post(notices::add))
        .route("/console/notices/preview", post(notices::preview))
        .route("/console/notices/{id}/remove", post(notices::remove))
        .route(
            "/console/templates",
            get(templates::page).post(templates::add),
        )
        .route("/console/templates/{id}", post(templates::change))
        .route("/console/templates/{id}/remove", post(templates::remove))
        .route(
            "/console/subscribers",
            get(subscribers::page).post(subscribers::add),
        )
        // A whole CSV file, up to the API's import limit (percent-encoded in a form: see
        // `session::import_form_max`); every other form stays under 64 KiB.
        .route(
            "/console/subscribers/import",
            post(subscribers::import).layer(axum::extract::DefaultBodyLimit::max(
                crate::api::session::import_form_max(limits.import_max_bytes),
            )),
        )
        .route("/console/subscribers/{id}", post(subscribers::change))
        .route(
            "/console/subscribers/{id}/remove",
            post(subscribers::remove),
        )
        .route("/console/users", get(users::page).post(users::add))
        .route("/console/users/{name}", post(users::change))
        .route("/console/users/{name}/remove", post(users::remove))
        .route(
            "/console/users/{name}/password",
            post(users::reset_password),
        )
        .route("/console/tokens", post(users::create_token))
        .route("/console/tokens/{id}/revoke", post(users::revoke_token))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authz::enforce,
        ))
        .layer(axum::middleware::from_fn_with_state(state, pages))
        .layer(axum::middleware::from_fn(super::headers::secure))
}

/// The console's language (its words are English; dates show the zone).
const EN: PageLang = PageLang("en");

/// Turns the middleware's refusals into pages: no (or an ended) session → the login page;
/// any other problem → an error page with the API's detail. Every console answer is
/// `Cache-Control: no-store` (it shows staff-only data).
async fn pages(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let is_get = req.method() == axum::http::Method::GET;
    let resp = next.run(req).await;
    let status = resp.status();
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    let mut resp = if status == StatusCode::UNAUTHORIZED && is_problem {
        // Back to the page asked for after signing in (a write's form is not replayed).
        let next = if is_get && path != "/console/login" {
            format!("&next={}", crate::percent::encode_path(&path))
        } else {
            String::new()
        };
        see_other(&format!("/console/login?ended=1{next}"))
    } else if is_problem {
        let (parts, body) = resp.into_parts();
        let detail = axum::body::to_bytes(body, 64 * 1024)
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["detail"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "the request was refused".into());
        let mut page = render(
            &state,
            EN,
            "console/error.html",
            context! { status => status.as_u16(), reason => status.canonical_reason(), detail => detail },
        );
        *page.status_mut() = status;
        for name in ["x-request-id", "retry-after"] {
            if let Some(v) = parts.headers.get(name) {
                page.headers_mut().insert(name, v.clone());
            }
        }
        page
    } else {
        resp
    };
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A 303 See Other to `to` (a console path).
fn see_other(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// The signed-in person as every page shows them, and what they may do.
fn me(caller: &Caller, session: Option<&SessionAuth>) -> Value {
    context! {
        name => caller.actor,
        role => caller.role.to_string(),
        csrf => session.map(|s| s.csrf.clone()).unwrap_or_default(),
        can_write => caller.role >= Role::Responder,
        can_publish => caller.role >= Role::Publisher,
        is_admin => caller.role >= Role::Admin,
    }
}

/// A console page: the shared context plus `page`.
fn page(state: &AppState, template: &str, me: Value, page: Value) -> Response {
    render(state, EN, template, context! { me => me, ..page })
}

/// An instant in the organisation's zone, with the zone's abbreviation (`14:05 EET`), and the
/// date when it is not today.
fn when(state: &AppState, t: DateTime<Utc>) -> String {
    let tz = state.render.timezone;
    let local = t.with_timezone(&tz);
    let today = state.dispatcher.now().with_timezone(&tz).date_naive();
    if local.date_naive() == today {
        local.format("%H:%M %Z").to_string()
    } else {
        local.format("%Y-%m-%d %H:%M %Z").to_string()
    }
}

/// "5 min", "2 h 10 min", "3 d" — how long from `from` to `to` (never negative).
fn span(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let mins = (to - from).num_minutes().max(0);
    match mins {
        0..=59 => format!("{mins} min"),
        60..=1439 => format!("{} h {} min", mins / 60, mins % 60),
        _ => format!("{} d {} h", mins / 1440, (mins % 1440) / 60),
    }
}

/// A handler's answer taken apart: status, JSON body, and the response's extensions (the
/// audit note the middleware reads) to carry over to the page made from it.
struct Answer {
    status: StatusCode,
    body: serde_json::Value,
    extensions: axum::http::Extensions,
}

async fn answer(resp: Response) -> Answer {
    let (parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    Answer {
        status: parts.status,
        body,
        extensions: parts.extensions,
    }
}

impl Answer {
    /// A 303 to `to`, carrying the handler's audit note.
    fn redirect(self, to: &str) -> Response {
        let mut resp = see_other(to);
        *resp.extensions_mut() = self.extensions;
        resp
    }
}

/// The form fields of a body, in order (repeated names kept).
fn fields(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

/// The first value of `name`.
fn field<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The first value of `name`, trimmed, if not empty.
fn filled<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
    field(f, name).map(str::trim).filter(|v| !v.is_empty())
}

/// The field an API message is about: its `field`, else the word before its first colon when
/// that is one of `known` (the API writes "impact: missing; …").
fn field_of(e: &crate::api::ApiError, known: &[&str]) -> String {
    if let Some(f) = e.field {
        return f.to_owned();
    }
    e.detail
        .split_once(':')
        .map(|(head, _)| head.trim())
        .filter(|head| known.contains(head))
        .unwrap_or("form")
        .to_owned()
}
