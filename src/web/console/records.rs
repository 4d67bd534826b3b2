//! The audit log viewer and the components page (notices: `notices.rs`). The log is read through the API's own
//! listing ([`crate::api::users::list_audit`]: the same filters, the same messages for a bad
//! one); a component's status is set through [`crate::api::components::set`].

use super::{answer, field, field_of, fields, me, when};
use crate::api::authz::Caller;
use crate::api::extract::{ApiJson, ApiQuery};
use crate::api::session::SessionAuth;
use crate::api::{ApiError, AppState};
use crate::store::port::Components;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use minijinja::{context, Value};
use serde_json::json;

/// The filters of the audit page, as typed (empty ones dropped).
fn filters(q: Option<&str>) -> Vec<(String, String)> {
    q.map(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .collect()
}

/// `GET /console/audit?since=24h&actor=&action=&target=&after=`.
pub async fn audit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    RawQuery(q): RawQuery,
) -> Response {
    let f = filters(q.as_deref());
    let mut v = serde_json::Map::new();
    for (k, val) in &f {
        v.insert(k.clone(), json!(val));
    }
    let listed = match serde_urlencoded::to_string(&f)
        .map_err(|e| ApiError::unprocessable(e.to_string()))
        .and_then(|s| {
            serde_urlencoded::from_str(&s)
                .map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))
        }) {
        Ok(query) => crate::api::users::list_audit(State(state.clone()), ApiQuery(query)).await,
        Err(e) => Err(e),
    };
    let (entries, next, error, error_field) = match listed {
        Ok(axum::Json(page)) => (page.entries, page.next, None, None),
        Err(e) => {
            let f = field_of(&e, &["since", "until", "after", "limit"]);
            (Vec::new(), None, Some(e.detail), Some(f))
        }
    };
    let rows: Vec<Value> = entries
        .iter()
        .rev()
        .map(|e| {
            context! {
                seq => e.seq,
                at => when(&state, e.at),
                actor => e.actor,
                role => e.role.map(|r| r.to_string()),
                action => e.action,
                target => e.target,
                summary => e.summary,
                client => e.client,
            }
        })
        .collect();
    let next_link = next.map(|n| {
        let mut keep: Vec<(String, String)> =
            f.iter().filter(|(k, _)| k != "after").cloned().collect();
        keep.push(("after".into(), n.to_string()));
        format!(
            "/console/audit?{}",
            serde_urlencoded::to_string(&keep).unwrap_or_default()
        )
    });
    let refused = error.is_some();
    let mut resp = super::page(
        &state,
        "console/audit.html",
        me(&caller, session.as_deref()),
        context! { rows => rows, v => Value::from_serialize(&v), next => next_link, error => error, error_field => error_field },
    );
    if refused {
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    resp
}

/// `GET /console/components`.
pub async fn components(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
) -> Result<Response, ApiError> {
    components_page(&state, &caller, session.as_deref(), None).await
}

async fn components_page(
    state: &AppState,
    caller: &Caller,
    session: Option<&SessionAuth>,
    error: Option<(String, ApiError)>,
) -> Result<Response, ApiError> {
    let list: Vec<Value> = state
        .store
        .components()
        .await?
        .into_iter()
        .map(|c| {
            context! {
                name => c.name.as_str(),
                action => format!("/console/components/{}", crate::percent::encode(c.name.as_str())),
                group => c.group,
                status => c.status.as_str(),
                label => c.status.as_str().replace('_', " "),
                since => when(state, c.updated_at),
            }
        })
        .collect();
    let status = error.as_ref().map_or(StatusCode::OK, |(_, e)| e.status);
    let mut resp = super::page(
        state,
        "console/components.html",
        me(caller, session),
        context! {
            components => list,
            statuses => ["operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"],
            error_for => error.as_ref().map(|(n, _)| n.clone()),
            error => error.map(|(_, e)| e.detail),
        },
    );
    *resp.status_mut() = status;
    Ok(resp)
}

/// `POST /console/components/{name}` → [`crate::api::components::set`].
pub async fn set_component(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = fields(&body);
    let req = json!({"status": field(&f, "status").unwrap_or_default()});
    let result = match serde_json::from_value(req) {
        Ok(b) => {
            crate::api::components::set(State(state.clone()), Path(name.clone()), ApiJson(b)).await
        }
        Err(e) => Err(ApiError::unprocessable(e.to_string())),
    };
    match result {
        Ok(resp) => Ok(answer(resp).await.redirect("/console/components")),
        Err(e) => components_page(&state, &caller, session.as_deref(), Some((name, e))).await,
    }
}
