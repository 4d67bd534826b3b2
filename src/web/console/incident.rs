//! The incident page: the timeline with its authors, the writes that move the incident on
//! (resolve, reopen, publish drafts, approve or reject a held write, requeue dead deliveries)
//! and the live delivery progress per channel. Every write calls the API's handler.

use super::compose::LANGUAGES;
use super::{answer, field, field_of, fields, filled, me, span, when};
use crate::api::authz::Caller;
use crate::api::extract::{ApiJson, ApiQuery};
use crate::api::session::SessionAuth;
use crate::api::{ApiError, AppState, Principal};
use crate::domain::ApprovalState;
use crate::store::port::Approvals;
use crate::store::port::Incidents;
use crate::web::page::render_html;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::Response;
use axum::Extension;
use futures_util::stream::{self, Stream};
use minijinja::{context, Value};
use serde::Deserialize;
use serde_json::{json, Map};
use std::convert::Infallible;

#[derive(Deserialize)]
pub struct PageQuery {
    done: Option<String>,
}

fn parse(id: &str) -> Result<ulid::Ulid, ApiError> {
    ulid::Ulid::from_string(id.trim()).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("\"{id}\" is not an incident id; ids are 26-character ULIDs"),
        )
    })
}

/// `GET /console/incidents/{id}`.
pub async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(who): Extension<Principal>,
    session: Option<Extension<SessionAuth>>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let notice = match q.done.as_deref() {
        Some("published") => {
            Some("Published: the update is on its way to every channel (progress below).")
        }
        Some("draft") => Some("Saved as a draft: nobody is notified until it is published."),
        Some("approved") => Some("Approved: the write is published (progress below)."),
        Some("rejected") => {
            Some("Rejected: nothing was sent; the author and the staff channels are told why.")
        }
        Some("requeued") => Some("Dead deliveries were requeued."),
        _ => None,
    };
    show(&state, &caller, &who, session.as_deref(), &id, notice, None).await
}

/// The incident page, with a notice or a refused write's message.
async fn show(
    state: &AppState,
    caller: &Caller,
    who: &Principal,
    session: Option<&SessionAuth>,
    id: &str,
    notice: Option<&str>,
    error: Option<ApiError>,
) -> Result<Response, ApiError> {
    let (incident, updates) = state.store.incident(parse(id)?).await?;
    let now = state.dispatcher.now();
    let overdue = incident.is_open() && incident.next_update_due.is_some_and(|d| d < now);
    let timeline: Vec<Value> = updates
        .iter()
        .rev()
        .map(|u| {
            let texts: Vec<Value> = u
                .body
                .texts()
                .iter()
                .map(|(l, t)| context! { locale => l.as_str(), text => t })
                .collect();
            context! {
                status => u.status.as_str(),
                action => format!("{:?}", u.action).to_lowercase(),
                author => u.author,
                at => when(state, u.created_at),
                draft => u.draft && u.published_at.is_none(),
                published => u.published_at.map(|t| when(state, t)),
                texts => texts,
            }
        })
        .collect();
    let drafts = updates.iter().any(|u| u.draft && u.published_at.is_none());
    let approvals: Vec<Value> = state
        .store
        .approvals(Some(ApprovalState::PendingApproval), 1000)
        .await?
        .into_iter()
        .filter(|a| a.incident_id == incident.id)
        .map(|a| {
            context! {
                id => a.id.to_string(),
                action => a.action.as_str(),
                author => a.author.clone(),
                own => a.author == who.0,
                message => a.message,
                waiting => span(a.requested_at, now),
                reasons => a.reasons,
            }
        })
        .collect();
    let (progress, _) = progress_context(state, who, &incident.id.to_string()).await;
    let languages: Vec<Value> = LANGUAGES
        .iter()
        .map(|(code, name)| context! { code => code, name => name })
        .collect();
    let (error_field, error_text, status) = match error {
        Some(e) => (
            Some(field_of(&e, &["message", "body", "reason"])),
            Some(e.detail),
            e.status,
        ),
        None => (None, None, StatusCode::OK),
    };
    let schedule = super::maintenance::schedule(state, &incident, &updates).await;
    let mut resp = super::page(
        state,
        "console/incident.html",
        me(caller, session),
        context! {
            i => context! {
                id => incident.id.to_string(),
                title => incident.title.as_str(),
                kind => incident.kind.as_str(),
                impact => incident.impact.as_str(),
                status => incident.status.as_str(),
                open => incident.is_open(),
                draft => incident.draft,
                components => incident.components.iter().map(|c| c.as_str().to_owned()).collect::<Vec<_>>(),
                opened => when(state, incident.created_at),
                age => span(incident.created_at, now),
                promise => incident.next_update_due.map(|d| when(state, d)),
                overdue => overdue,
            },
            timeline => timeline,
            schedule => schedule,
            drafts => drafts,
            approvals => approvals,
            progress => progress,
            languages => languages,
            notice => notice,
            error => error_text,
            error_field => error_field,
        },
    );
    *resp.status_mut() = status;
    Ok(resp)
}

/// The delivery progress of an incident, from the API's status (addresses hidden below
/// publisher, as there), and whether it is final: every delivery is, or the status cannot be
/// read (nothing more will come).
async fn progress_context(state: &AppState, who: &Principal, id: &str) -> (Value, bool) {
    let st = match crate::api::deliveries::status(
        State(state.clone()),
        Extension(who.clone()),
        Path(id.to_owned()),
    )
    .await
    {
        Ok(axum::Json(s)) => s,
        Err(e) => return (context! { error => e.detail }, true),
    };
    let mut total_all = 0;
    let mut final_all = 0;
    let channels: Vec<Value> = st
        .channels
        .iter()
        .map(|(name, c)| {
            let done = c.delivered + c.dead + c.rejected;
            total_all += c.total;
            final_all += done;
            let percent = (done * 100).checked_div(c.total).unwrap_or(0);
            context! {
                name => name,
                total => c.total,
                sent => c.delivered,
                pending => c.pending + c.in_flight,
                retrying => c.retrying,
                dead => c.dead,
                rejected => c.rejected,
                expanding => c.expanding,
                percent => percent,
                complete => c.is_final(),
            }
        })
        .collect();
    let failures: Vec<Value> = st
        .failures
        .iter()
        .map(|f| {
            context! {
                channel => f.channel,
                recipient => f.recipient,
                state => f.state.as_str(),
                attempts => f.attempts,
                reason => f.reason,
            }
        })
        .collect();
    let dead = st.channels.values().map(|c| c.dead).sum::<usize>();
    let v = context! {
        id => id,
        channels => channels,
        failures => failures,
        complete => st.complete,
        percent => (final_all * 100).checked_div(total_all).unwrap_or(0),
        dead => dead,
    };
    (v, st.complete)
}

/// The progress fragment (`console/progress.html`) as HTML, and whether every delivery is
/// final (or the progress cannot be read: nothing more will come).
async fn fragment(state: &AppState, who: &Principal, me: &Value, id: &str) -> (String, bool) {
    let (p, complete) = progress_context(state, who, id).await;
    let html = render_html(
        &state.render,
        super::EN,
        "console/progress.html",
        context! { me => me.clone(), progress => p },
    )
    .unwrap_or_else(|e| {
        tracing::error!(error = %e, "the progress fragment could not be rendered");
        "<p class=\"error\">The progress could not be shown; reload the page.</p>".to_owned()
    });
    (html, complete)
}

/// Where a console progress stream is.
enum Step {
    /// Read the progress (after waiting for the next look, unless it is the first).
    Look {
        wait: bool,
    },
    /// Every delivery is final: say so, then end.
    Done,
    End,
}

/// A console progress stream's state between events.
struct Watch {
    state: AppState,
    who: Principal,
    me: Value,
    id: String,
    step: Step,
    /// The fragment sent last (an unchanged one is not sent again).
    last: Option<String>,
}

/// `GET /console/incidents/{id}/stream` (`text/event-stream`): the progress fragment as a
/// `progress` event, at once and then whenever it changes (read as often as the API's delivery
/// stream reads, [`crate::api::deliveries::LOOK_EVERY`]); when every delivery is final, a last
/// `progress` and a `done` event, and the stream ends. It also ends, without `done`, when the
/// server shuts down (the browser's EventSource reconnects to the restarted server). A comment
/// every 15 seconds keeps proxies from closing a quiet stream. Addresses are hidden below
/// publisher, as on the page.
pub async fn stream(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(who): Extension<Principal>,
    session: Option<Extension<SessionAuth>>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    state.store.incident_summary(parse(&id)?).await?;
    let watch = Watch {
        me: me(&caller, session.as_deref()),
        state,
        who,
        id,
        step: Step::Look { wait: false },
        last: None,
    };
    let s = stream::unfold(watch, |mut w| async move {
        loop {
            match w.step {
                Step::End => return None,
                Step::Done => {
                    w.step = Step::End;
                    let done = Event::default()
                        .event("done")
                        .data("every delivery is final");
                    return Some((Ok(done), w));
                }
                Step::Look { wait } => {
                    if (wait && !crate::api::deliveries::next_look(&w.state).await)
                        || *w.state.closing.borrow()
                    {
                        return None;
                    }
                }
            }
            let (html, complete) = fragment(&w.state, &w.who, &w.me, &w.id).await;
            w.step = if complete {
                Step::Done
            } else {
                Step::Look { wait: true }
            };
            if w.last.as_deref() != Some(html.as_str()) {
                w.last = Some(html.clone());
                return Some((Ok(Event::default().event("progress").data(html)), w));
            }
        }
    });
    Ok(Sse::new(s).keep_alive(
        KeepAlive::new()
            .interval(std::time::Duration::from_secs(15))
            .text("heartbeat"),
    ))
}

/// `GET /console/incidents/{id}/progress`: the progress alone (the fragment the stream sends).
pub async fn progress(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(who): Extension<Principal>,
    session: Option<Extension<SessionAuth>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    parse(&id)?;
    let (p, _) = progress_context(&state, &who, &id).await;
    Ok(super::page(
        &state,
        "console/progress.html",
        me(&caller, session.as_deref()),
        context! { progress => p },
    ))
}

/// The texts of a form by language (`body` of the API), if any.
fn texts(f: &[(String, String)]) -> Map<String, serde_json::Value> {
    let mut req = Map::new();
    let mut body = Map::new();
    for (code, _) in LANGUAGES {
        if let Some(t) = filled(f, &format!("msg_{code}")) {
            body.insert(code.to_owned(), json!(t));
        }
    }
    if !body.is_empty() {
        req.insert("body".into(), serde_json::Value::Object(body));
    }
    req
}

/// The answer to a console write: on success a 303 to the incident page with `done`; on a
/// refusal the incident page again with the API's message.
#[allow(clippy::too_many_arguments)]
async fn finish(
    state: &AppState,
    caller: &Caller,
    who: &Principal,
    session: Option<&SessionAuth>,
    id: &str,
    done: &str,
    result: Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    match result {
        Ok(resp) => {
            let a = answer(resp).await;
            let to = if a.status == StatusCode::ACCEPTED {
                format!(
                    "/console/?held={}",
                    a.body["id"].as_str().unwrap_or_default()
                )
            } else {
                format!("/console/incidents/{id}?done={done}")
            };
            Ok(a.redirect(&to))
        }
        Err(e) => show(state, caller, who, session, id, None, Some(e)).await,
    }
}

fn body_of<T: serde::de::DeserializeOwned>(
    req: Map<String, serde_json::Value>,
) -> Result<T, ApiError> {
    serde_json::from_value(serde_json::Value::Object(req))
        .map_err(|e| ApiError::unprocessable(e.to_string()))
}

/// `POST /console/incidents/{id}/resolve` → [`crate::api::incidents::resolve`].
pub async fn resolve(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(who): Extension<Principal>,
    session: Option<Extension<SessionAuth>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = fields(&body);
    let mut req = texts(&f);
    if field(&f, "keep_components").is_some() {
        req.insert("keep_components".into(), json!(true));
    }
    let result = match body_of(req) {
        Ok(r) => {
            crate::api::incidents::resolve(
                State(state.clone()),
                Extension(who.clone()),
                Path(id.clone()),
                ApiJson(r),
            )
            .await
        }
        Err(e) => Err(e),
    };
    finish(
        &state,
        &caller,
        &who,
        session.as_deref(),
        &id,
        "published",
        result,
    )
    .await
}

/// `POST /console/incidents/{id}/reopen` → [`crate::api::incidents::reopen`].
pub async fn reopen(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(who): Extension<Principal>,
    session: Option<Extension<SessionAuth>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = fields(&body);
    let req = texts(&f);
    let result = match body_of(req) {
        Ok(r) => {
            crate::api::incidents::reopen(
                State(state.clone()),
                Extension(who.clone()),
                Path(id.clone()),
                ApiJson(r),
            )
            .await
        }
        Err(e) => Err(e),
    };
    finish(
        &state,
        &caller,
        &who,
        session.as_deref(),
        &id,
        "published",
        result,
    )
    .await
}

/// `POST /console/incidents/{id}/publish` → [`crate::api::incidents::publish`].
pub async fn publish(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(who): Extension<Principal>,
    session: Option<Extension<SessionAuth>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let result = match body_of(Map::new()) {
        Ok(q) => {
            crate::api::incidents::publish(
                State(state.clone()),
                Extension(who.clone()),
                Path(id.clone()),
                ApiQuery(q),
            )
            .await
        }
        Err(e) => Err(e),
    };
    finish(
        &state,
        &caller,
        &who,
        session.as_deref(),
        &id,
        "published",
        result,
    )
    .await
}

/// `POST /console/incidents/{id}/retry` → [`crate::api::deliveries::retry`].
pub async fn retry(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(who): Extension<Principal>,
    session: Option<Extension<SessionAuth>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let result = crate::api::deliveries::retry(State(state.clone()), Path(id.clone()))
        .await
        .map(axum::response::IntoResponse::into_response);
    finish(
        &state,
        &caller,
        &who,
        session.as_deref(),
        &id,
        "requeued",
        result,
    )
    .await
}

/// The incident a decision form came from (to show its page again).
fn incident_of(f: &[(String, String)]) -> String {
    filled(f, "incident").unwrap_or_default().to_owned()
}

/// `POST /console/approvals/{id}/approve` → [`crate::api::approvals::approve`].
pub async fn approve(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(who): Extension<Principal>,
    session: Option<Extension<SessionAuth>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let incident = incident_of(&fields(&body));
    let result =
        crate::api::approvals::approve(State(state.clone()), Extension(who.clone()), Path(id))
            .await;
    decided(
        &state,
        &caller,
        &who,
        session.as_deref(),
        &incident,
        "approved",
        result,
    )
    .await
}

/// `POST /console/approvals/{id}/reject` → [`crate::api::approvals::reject`].
pub async fn reject(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(who): Extension<Principal>,
    session: Option<Extension<SessionAuth>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = fields(&body);
    let incident = incident_of(&f);
    let mut req = Map::new();
    req.insert(
        "reason".into(),
        json!(field(&f, "reason").unwrap_or_default()),
    );
    let result = match body_of(req) {
        Ok(r) => {
            crate::api::approvals::reject(
                State(state.clone()),
                Extension(who.clone()),
                Path(id),
                ApiJson(r),
            )
            .await
        }
        Err(e) => Err(e),
    };
    decided(
        &state,
        &caller,
        &who,
        session.as_deref(),
        &incident,
        "rejected",
        result,
    )
    .await
}

/// True when `id` names an incident that exists (and can be read now).
async fn incident_exists(state: &AppState, id: &str) -> bool {
    match parse(id) {
        Ok(i) => state.store.incident_summary(i).await.is_ok(),
        Err(_) => false,
    }
}

/// After a decision: the incident's page (an approved open has its incident only now).
async fn decided(
    state: &AppState,
    caller: &Caller,
    who: &Principal,
    session: Option<&SessionAuth>,
    incident: &str,
    done: &str,
    result: Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    let exists = incident_exists(state, incident).await;
    match result {
        Ok(resp) => {
            let a = answer(resp).await;
            // The approval names its incident (approve answers {approval, published}).
            let approval = if a.body["approval"].is_object() {
                &a.body["approval"]
            } else {
                &a.body
            };
            let incident = approval["incident_id"]
                .as_str()
                .map_or_else(|| incident.to_owned(), str::to_owned);
            let published = incident_exists(state, &incident).await;
            let to = if published {
                format!("/console/incidents/{incident}?done={done}")
            } else {
                format!("/console/?done={done}")
            };
            Ok(a.redirect(&to))
        }
        Err(e) if exists => show(state, caller, who, session, incident, None, Some(e)).await,
        Err(e) => Err(e),
    }
}
