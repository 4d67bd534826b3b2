//! The subscribers page: counts per component and per language for every role; for publishers
//! and admins (the API's `GET /api/v1/subscribers` role) also the addresses, a search by
//! address, adding one, changing one's language and components, removing one and a CSV
//! import. Every write calls the API's handler ([`crate::api::subscribers::add`],
//! [`change`](crate::api::subscribers::change), [`remove`](crate::api::subscribers::remove),
//! [`import`](crate::api::subscribers::import)), so the rules, the CSV format and the messages
//! exist once.

use super::{answer, field_of, fields, filled, me, when};
use crate::api::authz::Caller;
use crate::api::extract::ApiJson;
use crate::api::session::SessionAuth;
use crate::api::subscribers::ImportReport;
use crate::api::{ApiError, AppState};
use crate::domain::{Role, Subscriber};
use crate::store::port::{Components, Subscribers};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use minijinja::{context, Value};
use serde::Deserialize;
use serde_json::{json, Map};
use std::collections::{BTreeMap, VecDeque};

/// The most subscribers the page lists (the newest matching ones).
pub const SHOWN: usize = 50;

/// The fields of the add form an API message can be about.
const KNOWN: [&str; 4] = ["email", "phone", "locale", "components"];

#[derive(Deserialize)]
pub struct PageQuery {
    /// A part of an address (case-insensitive).
    q: Option<String>,
    done: Option<String>,
}

/// What one pass over the subscribers found: the counts, and the newest matches of a search.
#[derive(Default)]
struct Tally {
    total: usize,
    pending: usize,
    opted_out: usize,
    every_component: usize,
    by_component: BTreeMap<String, usize>,
    by_language: BTreeMap<String, usize>,
    matches: VecDeque<Subscriber>,
    matched: usize,
}

/// Counts every subscriber and keeps the newest [`SHOWN`] whose address contains `needle`
/// (none when `needle` is `None`: the caller may not see addresses). One pass; the store walks
/// the subscribers off the async workers.
async fn tally(state: &AppState, needle: Option<String>) -> Result<Tally, ApiError> {
    let needle = needle.map(|n| n.trim().to_lowercase());
    let mut t = Tally::default();
    state
        .store
        .subscribers_where(usize::MAX, |s| {
            t.total += 1;
            if !s.confirmed {
                t.pending += 1;
            }
            if s.opted_out {
                t.opted_out += 1;
            }
            if s.components.is_empty() {
                t.every_component += 1;
            }
            for c in &s.components {
                *t.by_component.entry(c.to_string()).or_default() += 1;
            }
            *t.by_language
                .entry(s.locale.as_str().to_owned())
                .or_default() += 1;
            if let Some(n) = &needle {
                if s.contact.address().to_lowercase().contains(n.as_str()) {
                    t.matched += 1;
                    if t.matches.len() == SHOWN {
                        t.matches.pop_front();
                    }
                    t.matches.push_back(s.clone());
                }
            }
            false
        })
        .await?;
    Ok(t)
}

/// `GET /console/subscribers?q=`.
pub async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let notice = match q.done.as_deref() {
        Some("added") => Some("Subscriber added (confirmed: added by staff)."),
        Some("removed") => Some("Subscriber removed."),
        Some("changed") => Some("Subscriber changed: their language and components are saved."),
        _ => None,
    };
    let view = View {
        notice,
        search: q.q,
        ..View::default()
    };
    show(&state, &caller, session.as_deref(), view).await
}

/// What a page shows besides the counts and the list.
#[derive(Default)]
struct View {
    notice: Option<&'static str>,
    search: Option<String>,
    /// A refused add: the API's message, the field it is about, and the form as typed.
    error: Option<(String, String)>,
    typed: Map<String, serde_json::Value>,
    /// An import's outcome, or why the whole file was refused.
    report: Option<ImportReport>,
    import_error: Option<String>,
    csv: Option<String>,
    status: Option<StatusCode>,
    /// A refused edit of one subscriber.
    edit: Option<Edit>,
}

/// A refused edit: whose, the API's message, the field it is about, and the form as typed.
struct Edit {
    id: String,
    error: String,
    field: String,
    typed: Map<String, serde_json::Value>,
}

async fn show(
    state: &AppState,
    caller: &Caller,
    session: Option<&SessionAuth>,
    v: View,
) -> Result<Response, ApiError> {
    // Addresses are for the roles the API shows them to: publishers and admins.
    let addresses = caller.role >= Role::Publisher;
    let search = v.search.clone().unwrap_or_default();
    let t = tally(state, addresses.then(|| search.clone())).await?;
    let components = state.store.components().await?;
    let rows: Vec<Value> = t
        .matches
        .iter()
        .rev()
        .map(|s| {
            context! {
                id => s.id.to_string(),
                address => s.contact.address(),
                kind => if s.contact.address().contains('@') { "email" } else { "phone" },
                locale => s.locale.as_str(),
                components => s.components.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                confirmed => s.confirmed,
                opted_out => s.opted_out,
                since => when(state, s.created_at),
            }
        })
        .collect();
    let by_component: Vec<Value> = components
        .iter()
        .map(|c| {
            let n = c.name.to_string();
            context! { name => n.clone(), count => t.by_component.get(&n).copied().unwrap_or(0) }
        })
        .collect();
    let by_language: Vec<Value> = t
        .by_language
        .iter()
        .map(|(l, n)| context! { locale => l, count => n })
        .collect();
    let (error, error_field) = match v.error {
        Some((msg, f)) => (Some(msg), Some(f)),
        None => (None, None),
    };
    let report = v.report.map(|r| {
        context! {
            added => r.added,
            duplicates => r.duplicates,
            rejected => r.rejected,
            errors => r.errors.iter().map(|e| context! { line => e.line, message => e.message }).collect::<Vec<_>>(),
        }
    });
    let mut resp = super::page(
        state,
        "console/subscribers.html",
        me(caller, session),
        context! {
            addresses => addresses,
            notice => v.notice,
            q => search,
            total => t.total,
            pending => t.pending,
            opted_out => t.opted_out,
            every_component => t.every_component,
            by_component => by_component,
            by_language => by_language,
            rows => rows,
            matched => t.matched,
            shown => SHOWN,
            component_names => components.iter().map(|c| c.name.to_string()).collect::<Vec<_>>(),
            error => error,
            error_field => error_field,
            typed => Value::from_serialize(&v.typed),
            report => report,
            import_error => v.import_error,
            csv => v.csv,
            // A refused edit of a subscriber the list does not show: its message above it.
            edit_hidden => v.edit.as_ref().is_some_and(|e| !t.matches.iter().any(|s| s.id.to_string() == e.id)),
            edit => v.edit.map(|e| context! {
                id => e.id,
                error => e.error,
                field => e.field,
                typed => Value::from_serialize(&e.typed),
            }),
        },
    );
    if let Some(s) = v.status {
        *resp.status_mut() = s;
    }
    Ok(resp)
}

/// `POST /console/subscribers` → [`crate::api::subscribers::add`].
pub async fn add(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = fields(&body);
    let mut req = Map::new();
    for name in ["email", "phone", "locale"] {
        if let Some(v) = filled(&f, name) {
            req.insert(name.into(), json!(v));
        }
    }
    let components: Vec<&str> = f
        .iter()
        .filter(|(k, v)| k == "components" && !v.trim().is_empty())
        .map(|(_, v)| v.as_str())
        .collect();
    req.insert("components".into(), json!(components));
    let result = match serde_json::from_value(serde_json::Value::Object(req.clone())) {
        Ok(b) => crate::api::subscribers::add(State(state.clone()), ApiJson(b)).await,
        Err(e) => Err(ApiError::unprocessable(e.to_string())),
    };
    match result {
        Ok(resp) => Ok(answer(resp)
            .await
            .redirect("/console/subscribers?done=added")),
        Err(e) => {
            let at = field_of(&e, &KNOWN);
            // The form's own words for "give exactly one of email or phone".
            let at = if at == "form" && e.detail.contains("`email` or `phone`") {
                "email".to_owned()
            } else {
                at
            };
            let view = View {
                status: Some(e.status),
                error: Some((e.detail, at)),
                typed: req,
                ..View::default()
            };
            show(&state, &caller, session.as_deref(), view).await
        }
    }
}

/// `POST /console/subscribers/{id}` (the edit form of one subscriber: `locale` and the ticked
/// `components`, none ticked meaning every component) →
/// [`crate::api::subscribers::change`]: the same checks, messages and audit entry (before →
/// after) as `PATCH /api/v1/subscribers/{key}`. A refusal shows the list again with the API's
/// message next to the field of that subscriber's form, as typed; nothing is written.
pub async fn change(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = fields(&body);
    let mut req = Map::new();
    // A blank language keeps the subscriber's.
    if let Some(l) = filled(&f, "locale") {
        req.insert("locale".into(), json!(l));
    }
    let components: Vec<&str> = f
        .iter()
        .filter(|(k, v)| k == "components" && !v.trim().is_empty())
        .map(|(_, v)| v.as_str())
        .collect();
    req.insert("components".into(), json!(components));
    let search = filled(&f, "q").map(str::to_owned);
    let result = match serde_json::from_value(serde_json::Value::Object(req.clone())) {
        Ok(b) => {
            crate::api::subscribers::change(State(state.clone()), Path(id.clone()), ApiJson(b))
                .await
        }
        Err(e) => Err(ApiError::unprocessable(e.to_string())),
    };
    match result {
        Ok(resp) => {
            let to = match &search {
                Some(q) => format!(
                    "/console/subscribers?done=changed&q={}",
                    crate::percent::encode(q)
                ),
                None => "/console/subscribers?done=changed".to_owned(),
            };
            Ok(answer(resp).await.redirect(&to))
        }
        Err(e) => {
            let at = field_of(&e, &["locale", "components"]);
            let view = View {
                status: Some(e.status),
                search,
                edit: Some(Edit {
                    id,
                    error: e.detail,
                    field: at,
                    typed: req,
                }),
                ..View::default()
            };
            show(&state, &caller, session.as_deref(), view).await
        }
    }
}

/// `POST /console/subscribers/{id}/remove` → [`crate::api::subscribers::remove`]. The form
/// names the subscriber by id, so neither the URL nor the audit entry holds an address.
pub async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let resp = crate::api::subscribers::remove(State(state), Path(id)).await?;
    Ok(answer(resp)
        .await
        .redirect("/console/subscribers?done=removed"))
}

/// `POST /console/subscribers/import` (the form's `csv` field) →
/// [`crate::api::subscribers::import`]: the same CSV format, the same row checks, the same
/// report. Good rows are imported and bad ones listed with their line numbers, as the API does;
/// an unusable header row refuses the whole file and writes nothing.
pub async fn import(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(limits): Extension<crate::api::Limits>,
    session: Option<Extension<SessionAuth>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut f = fields(&body);
    drop(body);
    let at = f.iter().position(|(k, _)| k == "csv");
    let csv = at.map(|i| f.swap_remove(i).1).unwrap_or_default();
    drop(f);
    // The file is held to the API's import limit (the form around it may be larger).
    let result = if csv.len() > limits.import_max_bytes {
        Err(crate::api::subscribers::csv_too_large(
            Some(csv.len()),
            limits.import_max_bytes,
        ))
    } else {
        crate::api::subscribers::import(State(state.clone()), Ok(Bytes::from(csv.clone()))).await
    };
    let view = match result {
        Ok(axum::Json(report)) => {
            let failed = !report.errors.is_empty();
            View {
                report: Some(report),
                // A file with bad rows stays in the field, to be corrected and sent again.
                csv: failed.then_some(csv),
                ..View::default()
            }
        }
        // A file over the limit is not sent back into the field.
        Err(e) if e.status == StatusCode::PAYLOAD_TOO_LARGE => View {
            status: Some(e.status),
            import_error: Some(e.detail),
            ..View::default()
        },
        Err(e) => View {
            status: Some(e.status),
            import_error: Some(e.detail),
            csv: Some(csv),
            ..View::default()
        },
    };
    show(&state, &caller, session.as_deref(), view).await
}
